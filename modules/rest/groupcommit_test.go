package rest_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

// TestGroupCommitConcurrentSends: 2,000 sends over 50 sessions from 200
// users, 200 in flight at a time, a tenth of them retries of an earlier
// clientMessageId (often racing the original), through
// group commit: each is answered 201 (new) or 200 (a retry, with the
// original), and every session ends with seqs exactly 1..n, each client
// message once.
func TestGroupCommitConcurrentSends(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		const users, sessions, sends = 200, 50, 2000
		tokens := make([]string, users)
		for i := range tokens {
			tokens[i] = platformtest.Token(t, fmt.Sprintf("gc-user-%d", i))
		}
		// Session s has the 4 users 4s..4s+3.
		ids := make([]string, sessions)
		for s := range ids {
			body := fmt.Sprintf(`{"participants":["gc-user-%d","gc-user-%d","gc-user-%d"],"title":"gc %d"}`, 4*s+1, 4*s+2, 4*s+3, s)
			ids[s] = createSession(t, a, tokens[4*s], body).ID
		}
		type result struct {
			status int
			msg    chat.Message
		}
		results := make([]result, sends)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		inFlight := make(chan struct{}, users) // a user's client has one request out at a time
		for i := range sends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, k := i%sessions, i/sessions
				user := 4*s + k%4
				cmid := fmt.Sprintf("c-%d", k)
				if k%10 == 9 { // a retry of this user's previous message in s
					cmid = fmt.Sprintf("c-%d", k-4)
				}
				<-gate
				inFlight <- struct{}{}
				defer func() { <-inFlight }()
				res := a.Do("POST", "/api/chat/sessions/"+ids[s]+"/messages", tokens[user],
					map[string]any{"content": fmt.Sprintf("m %d", i), "clientMessageId": cmid})
				results[i].status = res.Status
				if res.Status == http.StatusCreated || res.Status == http.StatusOK {
					res.JSON(t, &results[i].msg)
				}
			}()
		}
		close(gate)
		wg.Wait()
		created := map[string]map[int64]string{} // session → seq → message id
		for i, r := range results {
			if r.status != http.StatusCreated && r.status != http.StatusOK {
				t.Fatalf("send %d: status %d", i, r.status)
			}
			m := r.msg
			if created[m.SessionID] == nil {
				created[m.SessionID] = map[int64]string{}
			}
			if prev, ok := created[m.SessionID][m.Seq]; ok && prev != m.ID {
				t.Fatalf("seq %d of %s answered with two messages", m.Seq, m.SessionID)
			}
			created[m.SessionID][m.Seq] = m.ID
		}
		for _, id := range ids {
			p := history(t, a, tokens[4*slices.Index(ids, id)], id, "?limit=200")
			seen := map[string]bool{}
			for j, m := range p.Messages {
				if m.Seq != int64(j+1) {
					t.Fatalf("session %s: seqs %v, want 1..%d", id, seqs(p.Messages), len(p.Messages))
				}
				key := m.SenderID + "/" + m.ClientMessageID
				if seen[key] {
					t.Fatalf("session %s stores %s twice", id, key)
				}
				seen[key] = true
			}
			if len(p.Messages) != len(created[id]) {
				t.Fatalf("session %s stores %d messages; the answers named %d", id, len(p.Messages), len(created[id]))
			}
		}
	})
}

// TestGroupCommitDatabaseCut: PostgreSQL is cut while many sends are in
// flight in shared transactions. Every send is answered 201 or 503 (never
// 500), and once the link is back, retrying the failed ones with their
// clientMessageIds leaves each session with every message exactly once and
// gapless seqs: nothing half-written, nothing lost.
func TestGroupCommitDatabaseCut(t *testing.T) {
	storage, proxy := proxiedPostgres(t)
	cfg := platformtest.Config(t, storage)
	cfg.Limits.RatePerSecond, cfg.Limits.Burst = 10000, 10000
	cfg.Storage.GroupCommit = config.GroupCommit{MaxBatch: 64, MaxWait: 2 * time.Millisecond}
	a := platformtest.Start(t, cfg)
	alice, bob := platformtest.Token(t, "alice"), platformtest.Token(t, "bob")
	sid := createSession(t, a, alice, `{"participants":["bob"],"title":"cut"}`).ID

	const senders, each = 16, 40
	var (
		wg      sync.WaitGroup
		failed  sync.Map // cmid → sender token
		ok, bad atomic.Int64
	)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := []string{alice, bob}[w%2]
			for i := range each {
				cmid := fmt.Sprintf("w%d-%d", w, i)
				res := a.Do("POST", "/api/chat/sessions/"+sid+"/messages", token, map[string]any{"content": cmid, "clientMessageId": cmid})
				switch res.Status {
				case http.StatusCreated:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					failed.Store(cmid, token)
				default:
					bad.Add(1)
					t.Errorf("send %s: %d %s", cmid, res.Status, res.Body)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	proxy.Cut()
	time.Sleep(300 * time.Millisecond)
	proxy.Restore()
	wg.Wait()
	if ok.Load() == senders*each {
		t.Log("no send failed: the cut fell between sends")
	}
	// Retry what failed until it goes through (the database is back).
	deadline := time.Now().Add(20 * time.Second)
	failed.Range(func(k, v any) bool {
		for {
			res := a.Do("POST", "/api/chat/sessions/"+sid+"/messages", v.(string), map[string]any{"content": k, "clientMessageId": k})
			if res.Status == http.StatusCreated || res.Status == http.StatusOK {
				return true
			}
			if time.Now().After(deadline) {
				t.Fatalf("retry of %s: %d %s", k, res.Status, res.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	var all []chat.Message
	for {
		p := history(t, a, alice, sid, fmt.Sprintf("?afterSeq=%d&limit=200", len(all)))
		all = append(all, p.Messages...)
		if !p.HasMore {
			break
		}
	}
	if len(all) != senders*each {
		t.Fatalf("%d messages stored, want %d", len(all), senders*each)
	}
	seen := map[string]bool{}
	for j, m := range all {
		if m.Seq != int64(j+1) || seen[m.ClientMessageID] || m.Content != m.ClientMessageID {
			t.Fatalf("message %d: seq %d, client id %s (seen %v), content %q", j, m.Seq, m.ClientMessageID, seen[m.ClientMessageID], m.Content)
		}
		seen[m.ClientMessageID] = true
	}
}
