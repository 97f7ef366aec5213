package rest_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

// TestReadBudget: history pages, session lists and /unread spend one
// per-user read budget; past it they answer 429 rate_limited with
// Retry-After, and another user is not affected.
func TestReadBudget(t *testing.T) {
	backends(t, func(c *config.Config) { c.Limits.ReadRatePerSecond = 0.5 }, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		// A burst of two seconds' worth: 1 read at 0.5/s.
		paths := []string{"/api/chat/sessions/" + s.ID + "/messages", "/api/chat/unread", "/api/chat/sessions"}
		for i, p := range paths {
			reader := u.bob
			if i > 0 {
				reader = platformtest.Token(t, "reader"+strconv.Itoa(i))
			}
			t.Run(p, func(t *testing.T) {
				ok, limited := 0, platformtest.Response{}
				for range 4 {
					res := a.Do("GET", p, reader, nil)
					if res.Status == http.StatusOK {
						ok++
						continue
					}
					limited = res
					break
				}
				if limited.Status != http.StatusTooManyRequests || limited.Problem(t) != "rate_limited" {
					t.Fatalf("%d reads passed, then %d %s", ok, limited.Status, limited.Body)
				}
				if secs, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || secs < 1 {
					t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
				}
				if res := a.Do("GET", p, platformtest.Token(t, "other"+strconv.Itoa(i)), nil); res.Status == http.StatusTooManyRequests {
					t.Fatalf("another user limited by this one's budget: %d %s", res.Status, res.Body)
				}
			})
		}
		// Sends have their own budget.
		if _, status := send(t, a, u.bob, s.ID, "still sends", ""); status != http.StatusCreated {
			t.Fatalf("send after reads: %d", status)
		}
	})
}
