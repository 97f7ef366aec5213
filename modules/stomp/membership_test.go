package stomp_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/stomp"
)

// A removed user's topic subscription gets the members event, then one
// removed event, then nothing; their /user/queue/messages no longer
// carries the session; a new SUBSCRIBE is refused with ERROR and close.
// Another connection of a re-added user may subscribe again.
func TestRemovalCutsSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob", "carol")
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	subscribe(t, bob, "q", stomp.QueueMessages)
	subscribe(t, bob, "ev", stomp.QueueEvents)
	alice := e.connect(t, "alice")
	subscribe(t, alice, "t", stomp.TopicSessionPrefix+sid)

	e.b.Publish(sid, "alice", "before")
	for range 2 {
		f := bob.Expect(t, frame.MESSAGE)
		if eventOf(t, f).Type != chat.EventMessage {
			t.Fatalf("before removal: %s", f.Body)
		}
	}
	expectMessage(t, alice, stomp.TopicSessionPrefix+sid, 1)

	e.b.RemoveMember(sid, "alice", "bob")
	got := map[string][]string{}
	for range 3 { // members on the topic and on events, removed on the topic
		f := bob.Expect(t, frame.MESSAGE)
		sub := f.Header.Get("subscription")
		got[sub] = append(got[sub], eventOf(t, f).Type)
	}
	if want := []string{chat.EventMembers, chat.EventRemoved}; len(got["t"]) != 2 || got["t"][0] != want[0] || got["t"][1] != want[1] {
		t.Fatalf("topic after removal: %v, want %v", got["t"], want)
	}
	if len(got["ev"]) != 1 || got["ev"][0] != chat.EventMembers {
		t.Fatalf("events after removal: %v", got["ev"])
	}
	if ev := eventOf(t, alice.Expect(t, frame.MESSAGE)); ev.Type != chat.EventMembers || len(ev.Removed) != 1 || ev.Removed[0] != "bob" || ev.By != "alice" {
		t.Fatalf("alice's members event: %+v", ev)
	}

	// Silence afterwards, on the topic and on the user queue.
	e.b.Publish(sid, "alice", "after")
	expectMessage(t, alice, stomp.TopicSessionPrefix+sid, 2)
	bob.NoFrame(t, 100*time.Millisecond)

	// A second connection of bob, and a new SUBSCRIBE on the first: refused.
	bob.SendFrame(frame.SUBSCRIBE, "", "id", "t2", "destination", stomp.TopicSessionPrefix+sid)
	if f := bob.ExpectError(t); f.Header.Get("message") != "forbidden destination" {
		t.Fatalf("re-subscribe: %v", f.Header)
	}
	bob2 := e.connect(t, "bob")
	bob2.SendFrame(frame.SUBSCRIBE, "", "id", "t", "destination", stomp.TopicSessionPrefix+sid)
	bob2.ExpectError(t)

	// Added again: a fresh connection and the old ones' caches allow it.
	e.b.AddMember(sid, "alice", "bob")
	bob3 := e.connect(t, "bob")
	subscribe(t, bob3, "t", stomp.TopicSessionPrefix+sid)
}

// Edit and delete events reach the topic and /user/queue/messages without
// a seq header (they are not new messages, and seq dedupe must not drop
// them); /app/chat.edit and /app/chat.delete refusals are problems.
func TestEditDeleteEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	subscribe(t, bob, "q", stomp.QueueMessages)
	subscribe(t, bob, "err", stomp.QueueErrors)
	alice := e.connect(t, "alice")
	e.b.Publish(sid, "alice", "helo")
	expectMessage(t, bob, stomp.TopicSessionPrefix+sid, 1)
	expectMessage(t, bob, stomp.QueueMessages, 1)

	sendJSON(alice, stomp.AppEdit, map[string]any{"sessionId": sid, "seq": 1, "content": "hello"}, "receipt", "e1")
	alice.Expect(t, frame.RECEIPT)
	for range 2 {
		f := bob.Expect(t, frame.MESSAGE)
		ev := eventOf(t, f)
		if ev.Type != chat.EventEdit || ev.Message == nil || ev.Message.Content != "hello" || f.Header.Get("seq") != "" {
			t.Fatalf("edit event: %v %s", f.Header, f.Body)
		}
	}
	sendJSON(alice, stomp.AppDelete, map[string]any{"sessionId": sid, "seq": 1}, "receipt", "d1")
	alice.Expect(t, frame.RECEIPT)
	for range 2 {
		if ev := eventOf(t, bob.Expect(t, frame.MESSAGE)); ev.Type != chat.EventDelete || ev.Seq != 1 || ev.SessionID != sid {
			t.Fatalf("delete event: %+v", ev)
		}
	}

	for _, tc := range []struct {
		name, dest string
		body       any
		code       string
		status     int
	}{
		{"edit of another's message", stomp.AppEdit, map[string]any{"sessionId": sid, "seq": 1, "content": "x"}, "forbidden", 403},
		{"delete of another's message", stomp.AppDelete, map[string]any{"sessionId": sid, "seq": 1}, "forbidden", 403},
		{"unknown seq", stomp.AppDelete, map[string]any{"sessionId": sid, "seq": 9}, "message_not_found", 404},
		{"seq zero", stomp.AppEdit, map[string]any{"sessionId": sid, "seq": 0, "content": "x"}, "invalid_seq", 400},
		{"seq missing", stomp.AppDelete, map[string]any{"sessionId": sid}, "invalid_seq", 400},
		{"content on delete", stomp.AppDelete, map[string]any{"sessionId": sid, "seq": 1, "content": "x"}, "unknown_field", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sendJSON(bob, tc.dest, tc.body, "receipt", "r")
			f := bob.Expect(t, frame.MESSAGE)
			var p struct {
				Code   string `json:"code"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(f.Body, &p); err != nil || p.Code != tc.code || p.Status != tc.status || f.Header.Get("receipt-id") != "r" {
				t.Fatalf("problem: %v %s", f.Header, f.Body)
			}
		})
	}
}
