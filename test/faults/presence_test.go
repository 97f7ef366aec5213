package faults

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// TestFaultPresenceKill9: alice is connected to instance b, her contact
// bob to instance a. a sees her online (event and GET); b is killed with
// SIGKILL (no goodbye), and a reports her offline within presence.ttl.
func TestFaultPresenceKill9(t *testing.T) {
	const ttl = 3 * time.Second
	c := newCluster(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	c.extra = []string{"presence.ttl=" + ttl.String(), "presence.exchange=chat.presence.faults." + hex.EncodeToString(suffix)}
	a, b := c.start("a"), c.start("b")
	createSession(t, a, "alice", "bob")

	bob, err := dialSTOMP(a, token(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.close()
	if err := bob.send(frame.New(frame.SUBSCRIBE, "id", "ev", "destination", "/user/queue/events", "receipt", "ev")); err != nil {
		t.Fatal(err)
	}
	if f, err := bob.next(10 * time.Second); err != nil || f.Command != frame.RECEIPT {
		t.Fatalf("SUBSCRIBE: %v %v", f, err)
	}
	alice, err := dialSTOMP(b, token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.close()

	type presenceEvent struct {
		Type       string  `json:"type"`
		UserID     string  `json:"userId"`
		Online     bool    `json:"online"`
		LastSeenAt *string `json:"lastSeenAt"`
	}
	expect := func(online bool, within time.Duration) presenceEvent {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			f, err := bob.next(time.Until(deadline))
			if err != nil {
				t.Fatalf("no presence event (online %v) within %s: %v", online, within, err)
			}
			var ev presenceEvent
			if err := json.Unmarshal(f.Body, &ev); err != nil || f.Command != frame.MESSAGE {
				t.Fatalf("got %s %s", f.Command, f.Body)
			}
			if ev.Type != "presence" {
				continue // the session event of the creation
			}
			if ev.UserID != "alice" || ev.Online != online {
				t.Fatalf("got %s, want alice online %v", f.Body, online)
			}
			return ev
		}
	}
	ask := func() (online bool, lastSeen *string) {
		t.Helper()
		status, body, err := do("GET", a.base+"/api/chat/presence?userIds=alice", token(t, "bob"), nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET presence: %d %s %v", status, body, err)
		}
		var out struct {
			Users []struct {
				Online     bool
				LastSeenAt *string
			}
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.Users) != 1 {
			t.Fatalf("GET presence: %s %v", body, err)
		}
		return out.Users[0].Online, out.Users[0].LastSeenAt
	}

	expect(true, 10*time.Second) // alice on b, seen from a
	if online, _ := ask(); !online {
		t.Fatal("a answers alice offline while she is connected to b")
	}

	b.kill9(t)
	killed := time.Now()
	ev := expect(false, ttl+time.Second)
	if d := time.Since(killed); d > ttl {
		t.Fatalf("offline %s after the kill, presence.ttl is %s", d, ttl)
	}
	if ev.LastSeenAt == nil {
		t.Fatal("offline event without lastSeenAt")
	}
	if online, seen := ask(); online || seen == nil {
		t.Fatalf("after the kill a answers online=%v lastSeenAt=%v", online, seen)
	}
}
