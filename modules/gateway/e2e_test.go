package gateway_test

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/stomp"
)

// startStack runs the service as cmd/chat assembles it (platform.Options),
// on SQLite with the in-process relay.
func startStack(t *testing.T) (wsBase string, svc *chat.Service) {
	t.Helper()
	cfg := platformtest.Config(t, config.Storage{
		Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "chat.db"), MaxOpenConns: 4,
	})
	cfg.Outbox.PollInterval = 10 * time.Millisecond
	app := platformtest.Start(t, cfg, fx.Populate(&svc))
	return "ws" + strings.TrimPrefix(app.URL, "http"), svc
}

func TestEndToEndOnSQLite(t *testing.T) {
	t.Parallel()
	base, svc := startStack(t)
	sess, _, err := svc.CreateSession(t.Context(), "alice", chat.CreateSessionRequest{Participants: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(user string) *stompc.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(base+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, user)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return connectOver(t, ws)
	}
	alice, bob := dial("alice"), dial("bob")
	topic, err := bob.Subscribe(stomp.TopicSessionPrefix+sess.ID, stompc.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	queue, err := bob.Subscribe(stomp.QueueMessages, stompc.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	events, err := alice.Subscribe(stomp.QueueEvents, stompc.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	barrier(t, bob, sess.ID)
	barrier(t, alice, sess.ID)

	body, _ := json.Marshal(chat.SendRequest{SessionID: sess.ID, Content: "hello over the real stack", ClientMessageID: "e2e-1"})
	if err := alice.Send(stomp.AppSend, "application/json", body, stompc.SendOpt.Receipt); err != nil {
		t.Fatalf("send: %v", err)
	}
	for _, sub := range []*stompc.Subscription{topic, queue} {
		m := readMsg(t, sub)
		ev := eventOf(t, m.Body)

		if ev.Type != chat.EventMessage || ev.Message == nil || ev.Message.Seq != 1 || ev.Message.ClientMessageID != "e2e-1" ||
			m.Header.Get("seq") != "1" || m.Header.Get("session-id") != sess.ID {
			t.Fatalf("%s: %v %s", sub.Destination(), m.Header, m.Body)
		}
	}

	// bob reads: alice's /user/queue/events hears of it.
	rb, _ := json.Marshal(map[string]any{"sessionId": sess.ID, "seq": 1})
	if err := bob.Send(stomp.AppRead, "application/json", rb, stompc.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	ev := eventOf(t, readMsg(t, events).Body)
	for ev.Type == chat.EventSession || ev.Type == "presence" { // bob coming online is news to alice too
		ev = eventOf(t, readMsg(t, events).Body)
	}
	if ev.Type != chat.EventRead || ev.UserID != "bob" || ev.Seq != 1 {
		t.Fatalf("alice's events: %+v", ev)
	}

	// A second send and a recovering subscriber: since-seq 0 replays both.
	body, _ = json.Marshal(chat.SendRequest{SessionID: sess.ID, Content: "second", ClientMessageID: "e2e-2"})
	if err := alice.Send(stomp.AppSend, "application/json", body, stompc.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	readMsg(t, topic)
	carol := dial("bob")
	rec, err := carol.Subscribe(stomp.TopicSessionPrefix+sess.ID, stompc.AckAuto, stompc.SubscribeOpt.Header("since-seq", "0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello over the real stack", "second"} {
		if ev := eventOf(t, readMsg(t, rec).Body); ev.Message == nil || !strings.Contains(ev.Message.Content, want) {
			t.Fatalf("replayed %+v, want %q", ev, want)
		}
	}
}
