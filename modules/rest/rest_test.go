package rest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/platform/platformtest/tcpproxy"
	"github.com/chat-service/chat/modules/store/storetest"
)

// backends runs fn once per database chat.yaml can pick, each on a fresh
// database, with the whole service assembled the way cmd/chat does.
func backends(t *testing.T, tweak func(*config.Config), fn func(t *testing.T, a *platformtest.App)) {
	for _, b := range []struct {
		name    string
		storage func(testing.TB) config.Storage
	}{
		{"sqlite", storetest.NewSQLite},
		{"postgres", storetest.NewPostgres},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cfg := platformtest.Config(t, b.storage(t))
			cfg.Profiles.Plugins["stub"] = map[string]any{
				"profiles":     map[string]any{"alice": map[string]any{"display_name": "Alice", "avatar_url": "https://img.example/alice.png"}},
				"denied_pairs": []any{[]any{"alice", "mallory"}},
			}
			// Tests send fast; TestRateLimit sets its own budget.
			cfg.Limits.RatePerSecond, cfg.Limits.Burst = 10000, 10000
			if tweak != nil {
				tweak(&cfg)
			}
			fn(t, platformtest.Start(t, cfg))
		})
	}
}

// proxiedPostgres is a fresh PostgreSQL database reached through a proxy
// the test can cut, with a short connect timeout.
func proxiedPostgres(t *testing.T) (config.Storage, *tcpproxy.Proxy) {
	storage := storetest.NewPostgres(t)
	proxy, dsn := tcpproxy.ForURL(t, storage.DSN, "5432", "connect_timeout", "2")
	storage.DSN = dsn
	return storage, proxy
}

type users struct{ alice, bob, carol, mallory string }

func tokens(t *testing.T) users {
	return users{
		alice: platformtest.Token(t, "alice"), bob: platformtest.Token(t, "bob"),
		carol: platformtest.Token(t, "carol"), mallory: platformtest.Token(t, "mallory"),
	}
}

func createSession(t *testing.T, a *platformtest.App, token string, body any) chat.Session {
	t.Helper()
	res := a.Do("POST", "/api/chat/sessions", token, body)
	if res.Status != http.StatusCreated && res.Status != http.StatusOK {
		t.Fatalf("create session: %d %s", res.Status, res.Body)
	}
	var s chat.Session
	res.JSON(t, &s)
	return s
}

func send(t *testing.T, a *platformtest.App, token, sid, content, cmid string) (chat.Message, int) {
	t.Helper()
	body := map[string]any{"content": content}
	if cmid != "" {
		body["clientMessageId"] = cmid
	}
	res := a.Do("POST", "/api/chat/sessions/"+sid+"/messages", token, body)
	if res.Status != http.StatusCreated && res.Status != http.StatusOK {
		t.Fatalf("send: %d %s", res.Status, res.Body)
	}
	var m chat.Message
	res.JSON(t, &m)
	return m, res.Status
}

func TestCreateSession(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		res := a.Do("POST", "/api/chat/sessions", u.alice, `{"participants":["bob"]}`)
		if res.Status != http.StatusCreated {
			t.Fatalf("new direct session: %d %s", res.Status, res.Body)
		}
		var s chat.Session
		res.JSON(t, &s)
		if s.Type != chat.TypeDirect || s.Title != nil || s.LastSeq != 0 || s.Unread != 0 || s.LastMessage != nil || len(s.Participants) != 2 {
			t.Fatalf("new session fields: %+v", s)
		}
		for _, p := range s.Participants {
			if p.LastReadSeq != 0 {
				t.Errorf("participant %s lastReadSeq %d", p.UserID, p.LastReadSeq)
			}
			if p.UserID == "alice" && p.DisplayName != "Alice" {
				t.Errorf("alice not enriched from the stub plugin: %+v", p)
			}
		}
		if !strings.Contains(string(res.Body), `"lastMessage":null`) || !strings.Contains(string(res.Body), `"title":null`) {
			t.Errorf("null fields must be present: %s", res.Body)
		}

		// The same pair, either way round, listing the caller or not: the same session, 200.
		for _, tc := range []struct{ token, body string }{
			{u.alice, `{"participants":["bob"]}`},
			{u.bob, `{"participants":["alice"]}`},
			{u.alice, `{"participants":["bob","alice","bob"]}`},
			{u.bob, `{"participants":["alice"],"type":"direct"}`},
		} {
			res := a.Do("POST", "/api/chat/sessions", tc.token, tc.body)
			var again chat.Session
			res.JSON(t, &again)
			if res.Status != http.StatusOK || again.ID != s.ID {
				t.Errorf("%s: status %d id %s, want 200 and %s", tc.body, res.Status, again.ID, s.ID)
			}
		}

		g := createSession(t, a, u.alice, `{"participants":["bob","carol"],"title":"Trip"}`)
		if g.Type != chat.TypeGroup || g.Title == nil || *g.Title != "Trip" || len(g.Participants) != 3 {
			t.Errorf("group: %+v", g)
		}
		g2 := a.Do("POST", "/api/chat/sessions", u.alice, `{"participants":["bob"],"type":"group"}`)
		if g2.Status != http.StatusCreated {
			t.Errorf("explicit group of two: %d %s", g2.Status, g2.Body)
		}
		titled := a.Do("POST", "/api/chat/sessions", u.alice, `{"participants":["bob"],"title":"x"}`)
		var ts chat.Session
		titled.JSON(t, &ts)
		if titled.Status != http.StatusCreated || ts.Type != chat.TypeGroup {
			t.Errorf("two people with a title make a group: %d %+v", titled.Status, ts)
		}

		many := make([]string, 100)
		for i := range many {
			many[i] = fmt.Sprintf("u%d", i)
		}
		for _, tc := range []struct {
			name, body, code string
			status           int
		}{
			{"no participants key", `{}`, "invalid_participants", 400},
			{"empty participants", `{"participants":[]}`, "invalid_participants", 400},
			{"only the caller", `{"participants":["alice"]}`, "invalid_participants", 400},
			{"bad user id", `{"participants":["bob smith"]}`, "invalid_participants", 400},
			{"too many", fmt.Sprintf(`{"participants":["%s"]}`, strings.Join(many, `","`)), "invalid_participants", 400},
			{"empty title", `{"participants":["bob"],"title":""}`, "invalid_title", 400},
			{"long title", fmt.Sprintf(`{"participants":["bob"],"title":"%s"}`, strings.Repeat("t", 201)), "invalid_title", 400},
			{"bad type", `{"participants":["bob"],"type":"channel"}`, "invalid_type", 400},
			{"direct of three", `{"participants":["bob","carol"],"type":"direct"}`, "invalid_type", 400},
			{"participants not a list", `{"participants":"bob"}`, "invalid_participants", 400},
			{"denied pairing", `{"participants":["mallory"]}`, "chat_not_allowed", 403},
			{"denied inside a group", `{"participants":["bob","mallory"]}`, "chat_not_allowed", 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := a.Do("POST", "/api/chat/sessions", u.alice, tc.body)
				if res.Status != tc.status || res.Problem(t) != tc.code {
					t.Errorf("got %d %s, want %d %s", res.Status, res.Body, tc.status, tc.code)
				}
			})
		}
	})
}

func TestGetSessionHidesOthersSessions(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		if res := a.Do("GET", "/api/chat/sessions/"+s.ID, u.bob, nil); res.Status != 200 {
			t.Fatalf("participant: %d %s", res.Status, res.Body)
		}
		missing := "0193a8f0-0000-7000-8000-000000000000"
		for _, tc := range []struct {
			name, path, token, code string
			status                  int
		}{
			{"not a participant", "/api/chat/sessions/" + s.ID, u.carol, "session_not_found", 404},
			{"no such session", "/api/chat/sessions/" + missing, u.alice, "session_not_found", 404},
			{"not a uuid", "/api/chat/sessions/nope", u.alice, "invalid_session_id", 400},
			{"history, not a participant", "/api/chat/sessions/" + s.ID + "/messages", u.carol, "session_not_found", 404},
			{"history, not a uuid", "/api/chat/sessions/123/messages", u.alice, "invalid_session_id", 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := a.Do("GET", tc.path, tc.token, nil)
				if res.Status != tc.status || res.Problem(t) != tc.code {
					t.Errorf("got %d %s", res.Status, res.Body)
				}
			})
		}
		for _, tc := range []struct{ name, path, body string }{
			{"send", "/messages", `{"content":"hi"}`},
			{"read", "/read", `{"seq":1}`},
		} {
			res := a.Do("POST", "/api/chat/sessions/"+s.ID+tc.path, u.carol, tc.body)
			if res.Status != 404 || res.Problem(t) != "session_not_found" {
				t.Errorf("%s by a non-participant: %d %s", tc.name, res.Status, res.Body)
			}
		}
	})
}
