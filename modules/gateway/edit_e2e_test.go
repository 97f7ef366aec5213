package gateway_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	stompc "github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestEditProblemsOverSTOMP: /app/chat.edit and /app/chat.delete refusals
// carry the code and status the REST answer would, on the real service.
func TestEditProblemsOverSTOMP(t *testing.T) {
	t.Parallel()
	const window = time.Second
	cfg := platformtest.Config(t, storetest.NewSQLite(t))
	cfg.Limits.RatePerSecond, cfg.Limits.Burst = 10000, 10000
	cfg.Limits.EditWindow = window
	in := startInstance(t, cfg)
	ctx := t.Context()
	sess, _, err := in.svc.CreateSession(ctx, "alice", chat.CreateSessionRequest{Participants: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := in.svc.Send(ctx, "alice", chat.SendRequest{SessionID: sess.ID, Content: "old"})
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := in.svc.Send(ctx, "alice", chat.SendRequest{SessionID: sess.ID, Content: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.svc.DeleteMessage(ctx, "alice", sess.ID, gone.Seq); err != nil {
		t.Fatal(err)
	}
	bobsMsg, _, err := in.svc.Send(ctx, "bob", chat.SendRequest{SessionID: sess.ID, Content: "bob's"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := in.svc.CreateSession(ctx, "bob", chat.CreateSessionRequest{Participants: []string{"carol"}})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(in.ws+"/ws?access_token="+url.QueryEscape(platformtest.Token(t, "alice")), nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := connectOver(t, ws)
	errs, err := alice.Subscribe(stomp.QueueErrors, stompc.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	barrier(t, alice, sess.ID)
	// Past the window for old (and gone); bobsMsg is not alice's anyway.
	time.Sleep(time.Until(old.CreatedAt.Add(window + 50*time.Millisecond)))
	fresh, _, err := in.svc.Send(ctx, "alice", chat.SendRequest{SessionID: sess.ID, Content: "fresh"})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, dest string
		body       map[string]any
		code       string
		status     int
	}{
		{"another's message", stomp.AppEdit, map[string]any{"sessionId": sess.ID, "seq": bobsMsg.Seq, "content": "x"}, "forbidden", 403},
		{"unknown seq", stomp.AppEdit, map[string]any{"sessionId": sess.ID, "seq": 99, "content": "x"}, "message_not_found", 404},
		{"deleted", stomp.AppEdit, map[string]any{"sessionId": sess.ID, "seq": gone.Seq, "content": "x"}, "message_deleted", 409},
		{"past the window, edit", stomp.AppEdit, map[string]any{"sessionId": sess.ID, "seq": old.Seq, "content": "x"}, "edit_window_passed", 403},
		{"past the window, delete", stomp.AppDelete, map[string]any{"sessionId": sess.ID, "seq": old.Seq}, "edit_window_passed", 403},
		{"too long", stomp.AppEdit, map[string]any{"sessionId": sess.ID, "seq": fresh.Seq, "content": strings.Repeat("x", 4097)}, "content_too_long", 413},
		{"empty", stomp.AppEdit, map[string]any{"sessionId": sess.ID, "seq": fresh.Seq, "content": ""}, "invalid_content", 400},
		{"not a participant", stomp.AppDelete, map[string]any{"sessionId": other.ID, "seq": 1}, "session_not_found", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(tc.body)
			// No receipt: go-stomp would wait for one, and a refusal sends none.
			if err := alice.Send(tc.dest, "application/json", body); err != nil {
				t.Fatal(err)
			}
			m := readMsg(t, errs)
			var p struct {
				Code   string `json:"code"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(m.Body, &p); err != nil || p.Code != tc.code || p.Status != tc.status {
				t.Fatalf("problem: %v %s", m.Header, m.Body)
			}
		})
	}
	// Within the window the sender's edit goes through.
	body, _ := json.Marshal(map[string]any{"sessionId": sess.ID, "seq": fresh.Seq, "content": "fresher"})
	if err := alice.Send(stomp.AppEdit, "application/json", body, stompc.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	list, _, err := in.svc.History(ctx, "bob", sess.ID, chat.HistoryQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if last := list[len(list)-1]; last.Content != "fresher" || last.EditedAt == nil {
		t.Fatalf("after the STOMP edit: %+v", last)
	}
}
