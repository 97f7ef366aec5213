package stomp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

func TestSendReachesOtherParticipant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	subscribe(t, bob, "q", stomp.QueueMessages)
	subscribe(t, alice, "q", stomp.QueueMessages)

	sendJSON(alice, stomp.AppSend, chat.SendRequest{SessionID: sid, Content: "hello", ClientMessageID: "c-1"}, "receipt", "s1")
	// The sender learns its seq on its own queue; the RECEIPT follows the durable accept.
	first, second := alice.Next(t), alice.Next(t)
	if first.Command == frame.RECEIPT {
		first, second = second, first
	}
	if second.Command != frame.RECEIPT || second.Header.Get("receipt-id") != "s1" {
		t.Fatalf("want RECEIPT s1, got %s %v", second.Command, second.Header)
	}
	if ev := eventOf(t, first); ev.Message == nil || ev.Message.ClientMessageID != "c-1" || ev.Message.Seq != 1 {
		t.Fatalf("alice's queue got %s", first.Body)
	}
	got := map[string]bool{}
	for range 2 {
		f := bob.Expect(t, frame.MESSAGE)
		ev := eventOf(t, f)
		if ev.Message == nil || ev.Message.Content != "hello" || f.Header.Get("seq") != "1" || f.Header.Get("session-id") != sid {
			t.Fatalf("bob got %v %s", f.Header, f.Body)
		}
		got[f.Header.Get("destination")+"/"+f.Header.Get("subscription")] = true
	}
	if !got[stomp.TopicSessionPrefix+sid+"/t"] || !got[stomp.QueueMessages+"/q"] {
		t.Fatalf("bob's deliveries: %v", got)
	}
}

func TestMessageIDsIncrease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	subscribe(t, bob, "q", stomp.QueueMessages)
	for i := range 5 {
		e.b.Publish(sid, "alice", "m"+strconv.Itoa(i))
	}
	last := 0
	for range 10 {
		f := bob.Expect(t, frame.MESSAGE)
		id, err := strconv.Atoi(f.Header.Get("message-id"))
		if err != nil || id <= last {
			t.Fatalf("message-id %q after %d", f.Header.Get("message-id"), last)
		}
		last = id
	}
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		act     func(tr *stomptest.Transport, sid string)
		message string
	}{
		{"non-participant SUBSCRIBE", func(tr *stomptest.Transport, sid string) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", stomp.TopicSessionPrefix+sid)
		}, "forbidden destination"},
		{"unknown session", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", stomp.TopicSessionPrefix+"0193a3f4-0000-7000-8000-000000000000")
		}, "forbidden destination"},
		{"malformed session id", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", stomp.TopicSessionPrefix+"../x")
		}, "forbidden destination"},
		{"another user's queue", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", "/user/alice/queue/messages")
		}, "unknown destination"},
		{"unknown destination", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", "/queue/messages")
		}, "unknown destination"},
		{"topic wildcard", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", "/topic/session.*")
		}, "forbidden destination"},
		{"SEND to a topic", func(tr *stomptest.Transport, sid string) {
			tr.SendFrame(frame.SEND, `{"content":"x"}`, "destination", stomp.TopicSessionPrefix+sid)
		}, "forbidden destination"},
		{"SEND to a queue", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SEND, `{}`, "destination", stomp.QueueMessages)
		}, "forbidden destination"},
		{"SEND to an unknown /app destination", func(tr *stomptest.Transport, _ string) {
			tr.SendFrame(frame.SEND, `{}`, "destination", "/app/chat.nosuch")
		}, "unknown destination"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			sid := e.b.CreateSession("alice", "bob")
			mallory := e.connect(t, "mallory")
			subscribe(t, mallory, "q", stomp.QueueMessages)
			subscribe(t, mallory, "e", stomp.QueueEvents)
			tc.act(mallory, sid)
			e.b.Publish(sid, "alice", "secret")
			f := mallory.Next(t)
			if f.Command != frame.ERROR || f.Header.Get("message") != tc.message {
				t.Fatalf("got %s %q %s, want ERROR %q", f.Command, f.Header.Get("message"), f.Body, tc.message)
			}
			mallory.WaitClosed(t)
			for f := mallory.TryNext(); f != nil; f = mallory.TryNext() {
				t.Fatalf("leaked %s %s", f.Command, f.Body)
			}
		})
	}
}

func TestParticipantCheckIsCachedPerConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	for i := range 3 {
		subscribe(t, bob, "t"+strconv.Itoa(i), stomp.TopicSessionPrefix+sid)
	}
	for range 5 {
		e.b.Publish(sid, "alice", "x")
	}
	for range 15 {
		bob.Expect(t, frame.MESSAGE)
	}
	if n := e.b.ParticipantChecks.Load(); n != 1 {
		t.Fatalf("%d participant checks, want 1", n)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	bob.SendFrame(frame.UNSUBSCRIBE, "", "id", "t", "receipt", "u")
	bob.Expect(t, frame.RECEIPT)
	e.b.Publish(sid, "alice", "x")
	bob.NoFrame(t, 50*time.Millisecond)
}

func expectProblem(t *testing.T, tr *stomptest.Transport, code, receipt string) problem.Problem {
	t.Helper()
	f := tr.Expect(t, frame.MESSAGE)
	if f.Header.Get("destination") != stomp.QueueErrors || f.Header.Get("content-type") != problem.ContentType {
		t.Fatalf("problem frame headers %v", f.Header)
	}
	if f.Header.Get("receipt-id") != receipt {
		t.Fatalf("receipt-id = %q, want %q", f.Header.Get("receipt-id"), receipt)
	}
	var p problem.Problem
	if err := json.Unmarshal(f.Body, &p); err != nil || p.Code != code {
		t.Fatalf("problem %s (%v), want code %s", f.Body, err, code)
	}
	return p
}

// failingChat fails CheckSend with err.
type failingChat struct {
	*stomptest.Backend
	err error
}

func (f failingChat) CheckSend(ctx context.Context, userID string, req chat.SendRequest) error {
	return f.err
}

func TestAppProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		chat   func(b *stomptest.Backend) stomp.Chat
		dest   string
		body   func(sid string) string
		ctype  string
		code   string
		status int
		cmid   string
	}{
		{name: "content too long", dest: stomp.AppSend, body: func(sid string) string {
			return `{"sessionId":"` + sid + `","content":"` + strings.Repeat("x", 5000) + `","clientMessageId":"c-9"}`
		}, code: "content_too_long", status: 413, cmid: "c-9"},
		{name: "empty content", dest: stomp.AppSend, body: func(sid string) string { return `{"sessionId":"` + sid + `","content":""}` }, code: "invalid_content", status: 400},
		{name: "bad JSON", dest: stomp.AppSend, body: func(string) string { return `{"sessionId":` }, code: "invalid_json", status: 400},
		{name: "trailing data", dest: stomp.AppSend, body: func(sid string) string { return `{"sessionId":"` + sid + `","content":"x"} {}` }, code: "invalid_json", status: 400},
		{name: "unknown field", dest: stomp.AppSend, body: func(string) string { return `{"sessionId":"x","content":"x","clientMessageId":"c-2","extra":1}` }, code: "unknown_field", status: 400, cmid: "c-2"},
		{name: "wrong type", dest: stomp.AppSend, body: func(string) string { return `{"sessionId":1}` }, code: "invalid_session_id", status: 400},
		{name: "wrong content type", dest: stomp.AppSend, ctype: "text/plain", body: func(sid string) string { return `{}` }, code: "unsupported_media_type", status: 415},
		{name: "not a participant", dest: stomp.AppSend, body: func(string) string {
			return `{"sessionId":"0193a3f4-0000-7000-8000-000000000000","content":"x"}`
		}, code: "session_not_found", status: 404},
		{name: "rate limited", dest: stomp.AppSend, chat: func(b *stomptest.Backend) stomp.Chat {
			return failingChat{b, &chat.Error{Kind: chat.ErrRateLimited, Code: "rate_limited", Detail: "slow down", RetryAfter: 1500 * time.Millisecond}}
		}, body: func(sid string) string { return `{"sessionId":"` + sid + `","content":"x","clientMessageId":"c-3"}` }, code: "rate_limited", status: 429, cmid: "c-3"},
		{name: "database down", dest: stomp.AppSend, chat: func(b *stomptest.Backend) stomp.Chat {
			return failingChat{b, fmt.Errorf("dial tcp: refused: %w", chat.ErrUnavailable)} // how the store reports an outage
		}, body: func(sid string) string { return `{"sessionId":"` + sid + `","content":"x"}` }, code: "unavailable", status: 503},
		{name: "read with fractional seq", dest: stomp.AppRead, body: func(sid string) string { return `{"sessionId":"` + sid + `","seq":1.5}` }, code: "invalid_seq", status: 400},
		{name: "read with negative seq", dest: stomp.AppRead, body: func(sid string) string { return `{"sessionId":"` + sid + `","seq":-1}` }, code: "invalid_seq", status: 400},
		{name: "read without seq", dest: stomp.AppRead, body: func(sid string) string { return `{"sessionId":"` + sid + `"}` }, code: "invalid_seq", status: 400},
		{name: "typing in a foreign session", dest: stomp.AppTyping, body: func(string) string {
			return `{"sessionId":"0193a3f4-0000-7000-8000-000000000000"}`
		}, code: "session_not_found", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *stomp.Options) {
				if tc.chat != nil {
					o.Chat = tc.chat(o.Chat.(*stomptest.Backend))
				}
			})
			sid := e.b.CreateSession("alice", "bob")
			alice := e.connect(t, "alice")
			subscribe(t, alice, "err", stomp.QueueErrors)
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			alice.SendFrame(frame.SEND, tc.body(sid), "destination", tc.dest, "content-type", ct, "receipt", "r-1")
			p := expectProblem(t, alice, tc.code, "r-1")
			if p.Status != tc.status || p.ClientMessageID != tc.cmid {
				t.Fatalf("problem %+v, want status %d clientMessageId %q", p, tc.status, tc.cmid)
			}
			if tc.code == "rate_limited" && p.RetryAfter != 2 {
				t.Fatalf("retryAfter = %d, want 2", p.RetryAfter)
			}
			// No RECEIPT, and the connection stays open and usable.
			alice.SendFrame(frame.ACK, "", "id", "x", "receipt", "after")
			if f := alice.Expect(t, frame.RECEIPT); f.Header.Get("receipt-id") != "after" {
				t.Fatalf("got receipt %q, want after (no receipt for the failed SEND)", f.Header.Get("receipt-id"))
			}
			if n := e.b.Submits.Load(); n != 0 {
				t.Fatalf("%d submits after a failed check", n)
			}
		})
	}
}

func TestSubmitFailureIsAProblem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.b.SubmitErr = fmt.Errorf("queue: %w", chat.ErrUnavailable) // how the command queue reports an outage
	sid := e.b.CreateSession("alice", "bob")
	alice := e.connect(t, "alice")
	subscribe(t, alice, "err", stomp.QueueErrors)
	sendJSON(alice, stomp.AppSend, chat.SendRequest{SessionID: sid, Content: "x", ClientMessageID: "c-1"}, "receipt", "r")
	if p := expectProblem(t, alice, "unavailable", "r"); p.ClientMessageID != "c-1" {
		t.Fatalf("clientMessageId %q", p.ClientMessageID)
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	e.b.Append(sid, "bob", "one")
	e.b.Append(sid, "bob", "two")
	alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
	subscribe(t, alice, "e", stomp.QueueEvents)
	subscribe(t, bob, "e", stomp.QueueEvents)
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	sendJSON(alice, stomp.AppRead, map[string]any{"sessionId": sid, "seq": 7}, "receipt", "rd")
	// The reader's own queue gets it too (other devices clear their badge).
	var sawReceipt, sawEvent bool
	for range 2 {
		f := alice.Next(t)
		switch f.Command {
		case frame.RECEIPT:
			sawReceipt = true
		case frame.MESSAGE:
			ev := eventOf(t, f)
			sawEvent = ev.Type == chat.EventRead && ev.Seq == 2 && ev.UserID == "alice"
		}
	}
	if !sawReceipt || !sawEvent {
		t.Fatalf("alice: receipt %v, read event %v", sawReceipt, sawEvent)
	}
	dests := map[string]bool{}
	for range 2 {
		f := bob.Expect(t, frame.MESSAGE)
		if ev := eventOf(t, f); ev.Type != chat.EventRead || ev.Seq != 2 {
			t.Fatalf("bob got %s", f.Body)
		}
		if f.Header.Get("seq") != "" {
			t.Fatalf("a read event carries no seq header: %v", f.Header)
		}
		dests[f.Header.Get("destination")] = true
	}
	if len(dests) != 2 {
		t.Fatalf("bob's read events went to %v", dests)
	}
}

func TestTyping(t *testing.T) {
	t.Parallel()
	t.Run("to the others, not the typist", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		sid := e.b.CreateSession("alice", "bob")
		alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
		for _, tr := range []*stomptest.Transport{alice, bob} {
			subscribe(t, tr, "t", stomp.TopicSessionPrefix+sid)
			subscribe(t, tr, "e", stomp.QueueEvents)
		}
		sendJSON(alice, stomp.AppTyping, map[string]string{"sessionId": sid}, "receipt", "ty")
		alice.Expect(t, frame.RECEIPT)
		for range 2 {
			if ev := eventOf(t, bob.Expect(t, frame.MESSAGE)); ev.Type != chat.EventTyping || ev.UserID != "alice" {
				t.Fatalf("bob got %+v", ev)
			}
		}
		alice.NoFrame(t, 50*time.Millisecond)
	})
	t.Run("rate-limited per connection", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(o *stomp.Options) { o.TypingEvery = time.Hour })
		sid := e.b.CreateSession("alice", "bob")
		alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
		subscribe(t, bob, "e", stomp.QueueEvents)
		for range 10 {
			sendJSON(alice, stomp.AppTyping, map[string]string{"sessionId": sid})
		}
		for range 3 { // the burst
			bob.Expect(t, frame.MESSAGE)
		}
		bob.NoFrame(t, 50*time.Millisecond)
	})
	t.Run("off when features.typing is off", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(o *stomp.Options) { o.Features.Typing = false })
		sid := e.b.CreateSession("alice", "bob")
		alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
		subscribe(t, bob, "e", stomp.QueueEvents)
		sendJSON(alice, stomp.AppTyping, map[string]string{"sessionId": sid}, "receipt", "ty")
		alice.Expect(t, frame.RECEIPT)
		bob.NoFrame(t, 50*time.Millisecond)
	})
}

func TestSessionAndErrorEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	alice, bob := e.connect(t, "alice"), e.connect(t, "bob")
	for _, tr := range []*stomptest.Transport{alice, bob} {
		subscribe(t, tr, "e", stomp.QueueEvents)
		subscribe(t, tr, "err", stomp.QueueErrors)
	}
	sess := &chat.Session{ID: "0193a3f4-0000-7000-8000-000000000001", Type: chat.TypeDirect}
	e.hub.Deliver(chat.Event{Type: chat.EventSession, Session: sess, Participants: []string{"alice", "bob", "carol"}})
	for _, tr := range []*stomptest.Transport{alice, bob} {
		if ev := eventOf(t, tr.Expect(t, frame.MESSAGE)); ev.Type != chat.EventSession || ev.Session == nil || ev.Session.ID != sess.ID {
			t.Fatalf("session event %+v", ev)
		}
	}
	p := problem.New(503, "unavailable", "the send could not be stored")
	p.ClientMessageID = "c-7"
	e.hub.Deliver(chat.Event{Type: chat.EventError, Problem: &p, Participants: []string{"bob"}})
	got := expectProblem(t, bob, "unavailable", "")
	if got.ClientMessageID != "c-7" {
		t.Fatalf("problem %+v", got)
	}
	alice.NoFrame(t, 50*time.Millisecond)
}
