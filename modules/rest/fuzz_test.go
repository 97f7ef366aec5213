package rest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chat-service/chat/modules/chat"
)

// FuzzDecode feeds arbitrary bodies to the strict REST decoder with every
// request type the handlers decode into: it either accepts the body or
// answers a 4xx problem document with a code, never a 5xx or a panic.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"content":"hi","clientMessageId":"c-1"}`,
		`{"seq":42}`,
		`{"participants":["bob"],"title":null,"type":"direct"}`,
		`{"content":"a\u0000b"}`,
		`{"seq":1e400}`,
		`{"participants":[1,2]}`,
		`{"content":"x"} {}`,
		"{\"content\":\"\xff\"}",
		`[]`, ``, `null`,
	} {
		f.Add([]byte(seed), "application/json")
	}
	f.Add([]byte(`{"seq":1}`), "text/plain")
	h := &Handlers{maxBody: 1 << 10, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		for _, dst := range []func() any{
			func() any { return &sendBody{} },
			func() any { return &readBody{} },
			func() any { return &chat.CreateSessionRequest{} },
		} {
			r := httptest.NewRequest(http.MethodPost, "/api/chat/x", bytes.NewReader(body))
			r.Header.Set("Content-Type", contentType)
			w := httptest.NewRecorder()
			if h.decode(w, r, dst()) {
				if w.Code != http.StatusOK || w.Body.Len() != 0 {
					t.Fatalf("accepted, yet wrote %d %q", w.Code, w.Body)
				}
				continue
			}
			if w.Code < 400 || w.Code > 499 {
				t.Fatalf("body %q: status %d", body, w.Code)
			}
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != w.Code {
				t.Fatalf("body %q: answer %d %q is not a problem document (%v)", body, w.Code, w.Body, err)
			}
		}
	})
}
