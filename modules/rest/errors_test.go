package rest_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

// TestBadInputLeavesTheStoreUnchanged sends every kind of client mistake the
// API names and checks the documented 4xx, then that nothing was written.
func TestBadInputLeavesTheStoreUnchanged(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		send(t, a, u.alice, s.ID, "before", "")
		msgs := "/api/chat/sessions/" + s.ID + "/messages"
		huge := strings.Repeat("x", 4096+16<<10+1)
		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			header                    []string
			status                    int
			code                      string
		}{
			{"no token", "GET", "/api/chat/unread", "", nil, nil, 401, "unauthorized"},
			{"garbage token", "GET", "/api/chat/unread", "not.a.jwt", nil, nil, 401, "unauthorized"},
			{"basic auth", "GET", "/api/chat/unread", "", nil, []string{"Authorization", "Basic YTpi"}, 401, "unauthorized"},
			{"unknown route", "GET", "/api/chat/nothing", u.alice, nil, nil, 404, "not_found"},
			{"unknown top-level route", "GET", "/nothing", "", nil, nil, 404, "not_found"},
			{"body over the limit", "POST", msgs, u.alice, `{"content":"` + huge + `"}`, nil, 413, "payload_too_large"},
			{"content over the limit", "POST", msgs, u.alice, map[string]string{"content": strings.Repeat("é", 2049)}, nil, 413, "content_too_long"},
			{"empty content", "POST", msgs, u.alice, `{"content":""}`, nil, 400, "invalid_content"},
			{"missing content", "POST", msgs, u.alice, `{}`, nil, 400, "invalid_content"},
			{"content not a string", "POST", msgs, u.alice, `{"content":5}`, nil, 400, "invalid_content"},
			{"bad clientMessageId", "POST", msgs, u.alice, `{"content":"a","clientMessageId":"has space"}`, nil, 400, "invalid_client_message_id"},
			{"long clientMessageId", "POST", msgs, u.alice, `{"content":"a","clientMessageId":"` + strings.Repeat("c", 65) + `"}`, nil, 400, "invalid_client_message_id"},
			{"empty clientMessageId", "POST", msgs, u.alice, `{"content":"a","clientMessageId":""}`, nil, 400, "invalid_client_message_id"},
			{"text/plain", "POST", msgs, u.alice, `{"content":"a"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
			{"no content type", "POST", msgs, u.alice, `{"content":"a"}`, []string{"Content-Type", ""}, 415, "unsupported_media_type"},
			{"latin-1 charset", "POST", msgs, u.alice, `{"content":"a"}`, []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, "unsupported_media_type"},
			{"invalid UTF-8", "POST", msgs, u.alice, []byte("{\"content\":\"\xff\xfe\"}"), nil, 400, "invalid_json"},
			{"malformed JSON", "POST", msgs, u.alice, `{"content":`, nil, 400, "invalid_json"},
			{"trailing data", "POST", msgs, u.alice, `{"content":"a"} {"content":"b"}`, nil, 400, "invalid_json"},
			{"JSON array", "POST", msgs, u.alice, `["a"]`, nil, 400, "invalid_json"},
			{"unknown field", "POST", msgs, u.alice, `{"content":"a","sender":"bob"}`, nil, 400, "unknown_field"},
			{"limit zero", "GET", msgs + "?limit=0", u.alice, nil, nil, 400, "invalid_limit"},
			{"limit negative", "GET", msgs + "?limit=-5", u.alice, nil, nil, 400, "invalid_limit"},
			{"limit huge", "GET", msgs + "?limit=1000000000000000000000", u.alice, nil, nil, 400, "invalid_limit"},
			{"limit 201", "GET", "/api/chat/sessions?limit=201", u.alice, nil, nil, 400, "invalid_limit"},
			{"limit text", "GET", msgs + "?limit=ten", u.alice, nil, nil, 400, "invalid_limit"},
			{"beforeSeq negative", "GET", msgs + "?beforeSeq=-1", u.alice, nil, nil, 400, "invalid_before_seq"},
			{"afterSeq text", "GET", msgs + "?afterSeq=x", u.alice, nil, nil, 400, "invalid_after_seq"},
			{"both bounds", "GET", msgs + "?afterSeq=1&beforeSeq=5", u.alice, nil, nil, 400, "invalid_after_seq"},
			{"bad cursor", "GET", "/api/chat/sessions?cursor=nope", u.alice, nil, nil, 400, "invalid_cursor"},
			{"forged cursor", "GET", "/api/chat/sessions?cursor=eyJhIjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoieCJ9", u.alice, nil, nil, 400, "invalid_cursor"},
			{"wrong method", "DELETE", msgs, u.alice, nil, nil, 405, "method_not_allowed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := a.Do(tc.method, tc.path, tc.token, tc.body, tc.header...)
				if res.Status != tc.status {
					t.Fatalf("status %d, want %d (body %.200s)", res.Status, tc.status, res.Body)
				}
				if code := res.Problem(t); code != tc.code {
					t.Errorf("code %q, want %q", code, tc.code)
				}
				if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
			})
		}
		var after chat.Session
		a.Do("GET", "/api/chat/sessions/"+s.ID, u.bob, nil).JSON(t, &after)
		if after.LastSeq != 1 || after.Unread != 1 {
			t.Fatalf("bad input changed the store: lastSeq %d unread %d", after.LastSeq, after.Unread)
		}
	})
}

func TestRateLimit(t *testing.T) {
	backends(t, func(c *config.Config) { c.Limits.RatePerSecond, c.Limits.Burst = 0.5, 3 }, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		ok := 0
		var limited platformtest.Response
		for i := 0; i < 5; i++ {
			res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", u.alice, `{"content":"x"}`)
			if res.Status == http.StatusCreated {
				ok++
				continue
			}
			limited = res
			break
		}
		// The session creation spent one token of the burst of 3.
		if ok != 2 || limited.Status != http.StatusTooManyRequests || limited.Problem(t) != "rate_limited" {
			t.Fatalf("%d sends passed, then %d %s", ok, limited.Status, limited.Body)
		}
		secs, err := strconv.Atoi(limited.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 2 {
			t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
		}
		var p struct {
			RetryAfter int `json:"retryAfter"`
		}
		limited.JSON(t, &p)
		if p.RetryAfter != secs {
			t.Errorf("retryAfter %d, header %d", p.RetryAfter, secs)
		}
		// Another user has a budget of their own.
		if res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", u.bob, `{"content":"x"}`); res.Status != http.StatusCreated {
			t.Fatalf("bob limited by alice's budget: %d", res.Status)
		}
	})
}

// TestDatabaseOutage cuts the link to PostgreSQL under a running service:
// REST answers 503 problems, /readyz 503 naming the database, and both
// recover once the link is back, without a restart.
func TestDatabaseOutage(t *testing.T) {
	storage, proxy := proxiedPostgres(t)
	a := platformtest.Start(t, platformtest.Config(t, storage))
	alice := platformtest.Token(t, "alice")
	s := createSession(t, a, alice, `{"participants":["bob"]}`)
	send(t, a, alice, s.ID, "before", "")

	proxy.Cut()
	res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", alice, `{"content":"during"}`)
	if res.Status != http.StatusServiceUnavailable || res.Problem(t) != "unavailable" {
		t.Fatalf("send during the outage: %d %s", res.Status, res.Body)
	}
	if res := a.Do("GET", "/api/chat/sessions/"+s.ID+"/messages", alice, nil); res.Status != http.StatusServiceUnavailable {
		t.Fatalf("history during the outage: %d %s", res.Status, res.Body)
	}
	ready := a.Do("GET", "/readyz", "", nil)
	if ready.Status != http.StatusServiceUnavailable || !strings.Contains(string(ready.Body), "database") {
		t.Fatalf("readyz during the outage: %d %s", ready.Status, ready.Body)
	}

	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", alice, `{"content":"after"}`)
		if res.Status == http.StatusCreated {
			var m chat.Message
			res.JSON(t, &m)
			if m.Seq != 2 {
				t.Fatalf("the failed send was half-written: seq %d", m.Seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the link came back: %d %s", res.Status, res.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := a.Do("GET", "/readyz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after recovery: %d %s", r.Status, r.Body)
	}
}
