package gateway_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/stomp"
)

// TestMembershipAndEditsAcrossInstances: the owner on one instance edits,
// deletes, adds and removes; a member connected to the other instance (the
// same one on SQLite) sees the edit and delete events, the added user gets
// the session event, and the removed member's topic subscription gets the
// members event, one removed event and then nothing, while their
// /user/queue/messages stops carrying the session and a new SUBSCRIBE is
// refused.
func TestMembershipAndEditsAcrossInstances(t *testing.T) { acrossDeployments(t, membershipAcross) }

func membershipAcross(t *testing.T, a, b instance) {
	ctx := t.Context()
	// Unique user ids: the RabbitMQ exchange is shared with every other
	// test (and test run) on the broker, and user queues follow user ids.
	sfx := "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	alice, bobID, carolID, daveID := "alice"+sfx, "bob"+sfx, "carol"+sfx, "dave"+sfx
	sess, _, err := a.svc.CreateSession(ctx, alice, chat.CreateSessionRequest{Participants: []string{bobID, carolID}})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(in instance, user string) (*stompc.Conn, *websocket.Conn) {
		ws, _, err := websocket.DefaultDialer.Dial(in.ws+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, user)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return connectOver(t, ws), ws
	}
	sub := func(c *stompc.Conn, dest string) *stompc.Subscription {
		s, err := c.Subscribe(dest, stompc.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	topicDest := stomp.TopicSessionPrefix + sess.ID
	bob, _ := dial(b, bobID)
	bobTopic, bobQueue, bobEvents := sub(bob, topicDest), sub(bob, stomp.QueueMessages), sub(bob, stomp.QueueEvents)
	barrier(t, bob, sess.ID)
	dave, _ := dial(b, daveID)
	daveEvents, daveQueue := sub(dave, stomp.QueueEvents), sub(dave, stomp.QueueMessages)
	carol, _ := dial(a, carolID)
	carolTopic := sub(carol, topicDest)
	barrier(t, carol, sess.ID)

	// next reads the next event of a type, skipping others (read receipts).
	next := func(s *stompc.Subscription, typ string) chat.Event {
		t.Helper()
		for {
			if ev := eventOf(t, readMsg(t, s).Body); ev.Type == typ {
				return ev
			}
		}
	}

	m1, _, err := a.svc.Send(ctx, alice, chat.SendRequest{SessionID: sess.ID, Content: "helo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*stompc.Subscription{bobTopic, bobQueue} {
		if ev := next(s, chat.EventMessage); ev.Message.Seq != m1.Seq {
			t.Fatalf("message on %s: %+v", s.Destination(), ev)
		}
	}

	// Edit and delete, on the other instance.
	if _, err := a.svc.EditMessage(ctx, alice, chat.EditRequest{SessionID: sess.ID, Seq: 1, Content: "hello"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*stompc.Subscription{bobTopic, bobQueue} {
		if ev := next(s, chat.EventEdit); ev.Message == nil || ev.Message.Content != "hello" || ev.Message.EditedAt == nil {
			t.Fatalf("edit on %s: %+v", s.Destination(), ev)
		}
	}
	if err := a.svc.DeleteMessage(ctx, alice, sess.ID, 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*stompc.Subscription{bobTopic, bobQueue} {
		if ev := next(s, chat.EventDelete); ev.Seq != 1 || ev.SessionID != sess.ID {
			t.Fatalf("delete on %s: %+v", s.Destination(), ev)
		}
	}

	// dave is added on A and hears of it on B; he sees the whole history.
	if _, err := a.svc.AddParticipants(ctx, alice, sess.ID, chat.AddParticipantsRequest{UserIDs: []string{daveID}}); err != nil {
		t.Fatal(err)
	}
	if ev := next(daveEvents, chat.EventSession); ev.Session == nil || ev.Session.ID != sess.ID || len(ev.Session.Participants) != 4 {
		t.Fatalf("dave's session event: %+v", ev)
	}
	if ev := next(daveEvents, chat.EventMembers); len(ev.Added) != 1 || ev.Added[0] != daveID || ev.By != alice {
		t.Fatalf("dave's members event: %+v", ev)
	}
	if ev := next(bobTopic, chat.EventMembers); len(ev.Added) != 1 || len(ev.Removed) != 0 {
		t.Fatalf("bob's members event (added): %+v", ev)
	}
	replay, err := dave.Subscribe(topicDest, stompc.AckAuto, stompc.SubscribeOpt.Header("since-seq", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(replay, chat.EventMessage); ev.Message.Seq != 1 || !ev.Message.Deleted || ev.Message.Content != "" {
		t.Fatalf("replayed tombstone: %+v", ev.Message)
	}

	// bob is removed on A: on B his topic gets members, removed, silence.
	if err := a.svc.RemoveParticipant(ctx, alice, sess.ID, bobID); err != nil {
		t.Fatal(err)
	}
	if ev := next(bobEvents, chat.EventMembers); len(ev.Added) != 1 || ev.Added[0] != daveID {
		t.Fatalf("bob's members event on /user/queue/events (added): %+v", ev)
	}
	if ev := next(bobEvents, chat.EventMembers); len(ev.Removed) != 1 || ev.Removed[0] != bobID {
		t.Fatalf("bob's members event on /user/queue/events: %+v", ev)
	}
	if ev := eventOf(t, readMsg(t, bobTopic).Body); ev.Type != chat.EventMembers || len(ev.Removed) != 1 {
		t.Fatalf("first on bob's topic after removal: %+v", ev)
	}
	if ev := eventOf(t, readMsg(t, bobTopic).Body); ev.Type != chat.EventRemoved || ev.SessionID != sess.ID {
		t.Fatalf("second on bob's topic after removal: %+v", ev)
	}
	m2, _, err := a.svc.Send(ctx, alice, chat.SendRequest{SessionID: sess.ID, Content: "after bob"})
	if err != nil {
		t.Fatal(err)
	}
	// dave (same instance as bob) and carol (the other) get it; bob nothing.
	if ev := next(daveQueue, chat.EventMessage); ev.Message.Seq != m2.Seq {
		t.Fatalf("dave: %+v", ev)
	}
	for ev := next(carolTopic, chat.EventMessage); ev.Message.Seq != m2.Seq; ev = next(carolTopic, chat.EventMessage) {
		if ev.Message.Seq > m2.Seq {
			t.Fatalf("carol: %+v", ev.Message)
		}
	}
	for _, s := range []*stompc.Subscription{bobTopic, bobQueue} {
		select {
		case m := <-s.C:
			t.Fatalf("bob's %s after removal: %s", s.Destination(), m.Body)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// A new SUBSCRIBE by bob, on either instance: ERROR, then close.
	for _, in := range []instance{a, b} {
		ws, _, err := websocket.DefaultDialer.Dial(in.ws+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, bobID)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if reply := rawConnect(t, ws); reply.Command != frame.CONNECTED {
			t.Fatalf("connect: %s %v", reply.Command, reply.Header)
		}
		f := frame.New(frame.SUBSCRIBE, "id", "x", "destination", topicDest, "receipt", "r")
		if err := ws.WriteMessage(websocket.TextMessage, stomp.AppendFrame(nil, f, stomp.V12)); err != nil {
			t.Fatal(err)
		}
		if reply := readFrame(t, ws); reply.Command != frame.ERROR {
			t.Fatalf("re-subscribe after removal: %s %v", reply.Command, reply.Header)
		}
		expectClosed(t, ws)
	}
}
