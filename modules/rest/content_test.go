package rest_test

import (
	"net/http"
	"testing"

	"github.com/chat-service/chat/modules/platform/platformtest"
)

// TestControlCharactersRefused: NUL and the other C0 controls (tab, LF and
// CR aside) in content or a title are a client mistake, 400
// invalid_content / invalid_title on both databases; PostgreSQL text cannot
// hold NUL, and before this rule it answered 500 there and stored it on SQLite.
func TestControlCharactersRefused(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		for _, tc := range []struct {
			name, content string
		}{
			{"nul", "a\u0000b"},
			{"only nul", "\u0000"},
			{"bell", "ding\u0007"},
			{"escape", "\u001b[31mred"},
			{"unit separator", "a\u001fb"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", u.alice, map[string]any{"content": tc.content, "clientMessageId": "ctl-1"})
				if res.Status != http.StatusBadRequest || res.Problem(t) != "invalid_content" {
					t.Fatalf("%q: %d %s", tc.content, res.Status, res.Body)
				}
			})
		}
		// Tab, LF and CR are text.
		if m, status := send(t, a, u.alice, s.ID, "line one\r\n\tline two", "ok-1"); status != http.StatusCreated || m.Content != "line one\r\n\tline two" {
			t.Fatalf("tab/LF/CR: %d %+v", status, m)
		}
		var after struct {
			LastSeq int64 `json:"lastSeq"`
		}
		a.Do("GET", "/api/chat/sessions/"+s.ID, u.alice, nil).JSON(t, &after)
		if after.LastSeq != 1 {
			t.Fatalf("refused sends were stored: lastSeq %d", after.LastSeq)
		}
		res := a.Do("POST", "/api/chat/sessions", u.alice, map[string]any{"participants": []string{"bob", "carol"}, "title": "a\u0000b"})
		if res.Status != http.StatusBadRequest || res.Problem(t) != "invalid_title" {
			t.Fatalf("NUL title: %d %s", res.Status, res.Body)
		}
	})
}
