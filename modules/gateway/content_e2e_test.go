package gateway_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestControlCharactersOverSTOMP: a chat.send with NUL in its content gets
// a problem invalid_content on /user/queue/errors and no RECEIPT, on both
// databases, and nothing is stored (before, the RECEIPT came first and the
// message was then dropped on PostgreSQL).
func TestControlCharactersOverSTOMP(t *testing.T) {
	storetest.Backends(t, func(t *testing.T, storage config.Storage) {
		t.Parallel()
		cfg := platformtest.Config(t, storage)
		cfg.Outbox.PollInterval = 10 * time.Millisecond
		var svc *chat.Service
		app := platformtest.Start(t, cfg, fx.Populate(&svc))
		sess, _, err := svc.CreateSession(t.Context(), "alice", chat.CreateSessionRequest{Participants: []string{"bob"}})
		if err != nil {
			t.Fatal(err)
		}
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(app.URL, "http")+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, "alice")), nil)
		if err != nil {
			t.Fatal(err)
		}
		c := connectOver(t, ws)
		t.Cleanup(func() { _ = ws.Close() }) // before the client's DISCONNECT, which would wait for the receipt that never comes
		errs, err := c.Subscribe(stomp.QueueErrors, stompc.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		barrier(t, c, sess.ID)
		body, _ := json.Marshal(chat.SendRequest{SessionID: sess.ID, Content: "a\u0000b", ClientMessageID: "nul-1"})
		receipts := make(chan error, 1)
		go func() {
			receipts <- c.Send(stomp.AppSend, "application/json", body, func(f *frame.Frame) error {
				f.Header.Add(frame.Receipt, "r-nul")
				return nil
			})
		}()
		m := readMsg(t, errs)
		var p struct {
			Code            string `json:"code"`
			ClientMessageID string `json:"clientMessageId"`
		}
		if err := json.Unmarshal(m.Body, &p); err != nil || p.Code != "invalid_content" || p.ClientMessageID != "nul-1" || m.Header.Get("receipt-id") != "r-nul" {
			t.Fatalf("problem %v %s (%v)", m.Header, m.Body, err)
		}
		select {
		case err := <-receipts:
			t.Fatalf("Send returned (%v): a RECEIPT came for a refused send", err)
		case <-time.After(200 * time.Millisecond):
		}
		got, err := svc.Session(t.Context(), "alice", sess.ID)
		if err != nil || got.LastSeq != 0 {
			t.Fatalf("stored: lastSeq %d %v", got.LastSeq, err)
		}
	})
}

// TestSinceSeqPastReadBudget: a since-seq SUBSCRIBE spends the user's read
// budget; past it the subscription gets one resync event instead of a
// replay and goes on live, so SUBSCRIBE/UNSUBSCRIBE loops cannot make the
// database replay history without bound.
func TestSinceSeqPastReadBudget(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Config(t, storetest.NewSQLite(t))
	cfg.Outbox.PollInterval = 10 * time.Millisecond
	cfg.Limits.ReadRatePerSecond = 0.5 // burst 1
	var svc *chat.Service
	app := platformtest.Start(t, cfg, fx.Populate(&svc))
	sess, _, err := svc.CreateSession(t.Context(), "alice", chat.CreateSessionRequest{Participants: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Send(t.Context(), "alice", chat.SendRequest{SessionID: sess.ID, Content: "one"}); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(app.URL, "http")+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, "bob")), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := connectOver(t, ws)
	first, err := c.Subscribe(stomp.TopicSessionPrefix+sess.ID, stompc.AckAuto, stompc.SubscribeOpt.Header("since-seq", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := eventOf(t, readMsg(t, first).Body); ev.Type != chat.EventMessage || ev.Message.Seq != 1 {
		t.Fatalf("first replay: %+v", ev)
	}
	second, err := c.Subscribe(stomp.TopicSessionPrefix+sess.ID, stompc.AckAuto, stompc.SubscribeOpt.Header("since-seq", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := eventOf(t, readMsg(t, second).Body); ev.Type != chat.EventResync || ev.FromSeq == nil || *ev.FromSeq != 0 {
		t.Fatalf("past the budget: %+v, want resync from 0", ev)
	}
	// Both subscriptions go on live.
	if _, _, err := svc.Send(t.Context(), "alice", chat.SendRequest{SessionID: sess.ID, Content: "two"}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*stompc.Subscription{first, second} {
		for { // the resynced one may see seq 1 live too, if the relay was slower than the SUBSCRIBE
			ev := eventOf(t, readMsg(t, sub).Body)
			if ev.Type != chat.EventMessage || ev.Message.Seq > 2 {
				t.Fatalf("live after replay/resync: %+v", ev)
			}
			if ev.Message.Seq == 2 {
				break
			}
		}
	}
}
