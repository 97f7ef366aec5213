package presence_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store/storetest"
)

// client is a small STOMP 1.2 client over a raw WebSocket; a reader
// goroutine hands frames over (a gorilla read that times out breaks the
// connection, so reads are not polled with deadlines).
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan *frame.Frame
}

func dial(t *testing.T, a *platformtest.App, user string) *client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(a.URL, "http") + "/ws?access_token=" + url.QueryEscape(platformtest.Token(t, user))
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	c := &client{t: t, ws: ws, frames: make(chan *frame.Frame, 256)}
	go c.read()
	t.Cleanup(c.close)
	c.send(frame.New(frame.CONNECT, "accept-version", "1.2", "host", "chat"))
	if f := c.next(10 * time.Second); f == nil || f.Command != frame.CONNECTED {
		t.Fatalf("CONNECT as %s: %v", user, f)
	}
	return c
}

func (c *client) read() {
	defer close(c.frames)
	dec := stomp.NewDecoder(1 << 20)
	dec.SetVersion(stomp.V12)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		dec.Write(b)
		for {
			f, err := dec.Next()
			if err != nil || f == nil {
				break
			}
			c.frames <- f
		}
	}
}

// subscribeEvents subscribes to /user/queue/events and waits for the receipt.
func (c *client) subscribeEvents() {
	c.t.Helper()
	c.send(frame.New(frame.SUBSCRIBE, "id", "ev", "destination", stomp.QueueEvents, "receipt", "ev"))
	if f := c.next(10 * time.Second); f == nil || f.Command != frame.RECEIPT {
		c.t.Fatalf("SUBSCRIBE: %v", f)
	}
}

func (c *client) send(f *frame.Frame) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, stomp.AppendFrame(nil, f, stomp.V12)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame, or nil when none arrives within timeout
// or the connection ended.
func (c *client) next(timeout time.Duration) *frame.Frame {
	select {
	case f := <-c.frames:
		return f
	case <-time.After(timeout):
		return nil
	}
}

func (c *client) close() { _ = c.ws.Close() }

type event struct {
	Type       string  `json:"type"`
	UserID     string  `json:"userId"`
	Online     bool    `json:"online"`
	LastSeenAt *string `json:"lastSeenAt"`
}

// presence waits up to timeout for the next presence event; nil: none.
func (c *client) presence(timeout time.Duration) *event {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		f := c.next(left)
		if f == nil {
			return nil
		}
		if f.Command != frame.MESSAGE {
			c.t.Fatalf("got %s %q %s", f.Command, f.Header.Get("message"), f.Body)
		}
		var ev event
		if err := json.Unmarshal(f.Body, &ev); err != nil {
			c.t.Fatalf("event %s: %v", f.Body, err)
		}
		if ev.Type == "presence" {
			if f.Header.Get("destination") != stomp.QueueEvents {
				c.t.Fatalf("presence event on %s", f.Header.Get("destination"))
			}
			return &ev
		}
	}
}

func (c *client) expectPresence(user string, online bool, timeout time.Duration) *event {
	c.t.Helper()
	ev := c.presence(timeout)
	if ev == nil {
		c.t.Fatalf("no presence event for %s (online %v) within %s", user, online, timeout)
	}
	if ev.UserID != user || ev.Online != online || (ev.LastSeenAt == nil) != online {
		c.t.Fatalf("presence event %+v, want user %s online %v (lastSeenAt set when offline)", *ev, user, online)
	}
	return ev
}

func (c *client) noPresence(d time.Duration) {
	c.t.Helper()
	if ev := c.presence(d); ev != nil {
		c.t.Fatalf("unexpected presence event %+v", *ev)
	}
}

type status struct {
	UserID     string  `json:"userId"`
	Online     bool    `json:"online"`
	LastSeenAt *string `json:"lastSeenAt"`
}

func presenceOf(t *testing.T, a *platformtest.App, caller string, ids ...string) map[string]status {
	t.Helper()
	res := a.Do("GET", "/api/chat/presence?userIds="+strings.Join(ids, ","), platformtest.Token(t, caller), nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET presence: %d %s", res.Status, res.Body)
	}
	var out struct{ Users []status }
	res.JSON(t, &out)
	if len(out.Users) != len(ids) {
		t.Fatalf("GET presence answered %d users for %d ids: %s", len(out.Users), len(ids), res.Body)
	}
	m := make(map[string]status, len(ids))
	for i, s := range out.Users {
		if s.UserID != ids[i] {
			t.Fatalf("users[%d] is %s, want %s (request order)", i, s.UserID, ids[i])
		}
		m[s.UserID] = s
	}
	return m
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// users returns distinct user ids for one test: tests share RabbitMQ.
func users(names ...string) []string {
	s := suffix()
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "-" + s
	}
	return out
}

func createSession(t *testing.T, a *platformtest.App, creator string, others ...string) {
	t.Helper()
	res := a.Do("POST", "/api/chat/sessions", platformtest.Token(t, creator), map[string]any{"participants": others})
	if res.Status != http.StatusCreated {
		t.Fatalf("create session: %d %s", res.Status, res.Body)
	}
}

// amqpConfig is cfg on RabbitMQ with this test's own presence exchange
// and command queue.
func amqpConfig(t *testing.T, db config.Storage, exchange, queue string) config.Config {
	t.Helper()
	u := os.Getenv("TEST_CHAT_AMQP_URL")
	if u == "" {
		t.Skip("needs TEST_CHAT_AMQP_URL")
	}
	cfg := platformtest.Config(t, db)
	cfg.Relay.Driver, cfg.Relay.AMQP.URL = "amqp", u
	cfg.Presence.Exchange = exchange
	cfg.Commands.Queue = queue
	return cfg
}

// TestPresence runs the presence rules on the embedded default (one
// instance) and on PostgreSQL + RabbitMQ with two instances, alice on the
// second and her contact bob on the first.
func TestPresence(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		a := platformtest.Start(t, platformtest.Config(t, storetest.NewSQLite(t)))
		presenceRules(t, a, a)
	})
	t.Run("postgres_amqp_two_instances", func(t *testing.T) {
		t.Parallel()
		db := storetest.NewPostgres(t)
		ex, q := "chat.presence.test."+suffix(), "chat.send.presence."+suffix()
		a := platformtest.Start(t, amqpConfig(t, db, ex, q))
		b := platformtest.Start(t, amqpConfig(t, db, ex, q))
		presenceRules(t, a, b)
	})
}

func presenceRules(t *testing.T, a, b *platformtest.App) {
	u := users("alice", "bob", "carol")
	alice, bob, carol := u[0], u[1], u[2]
	createSession(t, a, alice, bob)

	bc := dial(t, a, bob)
	bc.subscribeEvents()
	// carol shares no session with alice: she is never told, nor answered.
	cc := dial(t, a, carol)
	cc.subscribeEvents()

	ac := dial(t, b, alice)
	bc.expectPresence(alice, true, 10*time.Second)
	if s := presenceOf(t, a, bob, alice, carol, bob); !s[alice].Online || s[alice].LastSeenAt != nil ||
		s[carol].Online || s[carol].LastSeenAt != nil || !s[bob].Online {
		t.Fatalf("bob asks: %+v", s)
	}
	if s := presenceOf(t, a, carol, alice); s[alice].Online || s[alice].LastSeenAt != nil {
		t.Fatalf("carol, no contact of alice, is told %+v", s[alice])
	}

	// A second connection, closed again, changes nothing.
	ac2 := dial(t, b, alice)
	ac2.close()
	// A reconnect within the flap window publishes nothing, to the same
	// instance or (a failover) to the other.
	ac.close()
	time.Sleep(300 * time.Millisecond)
	ac = dial(t, b, alice)
	bc.noPresence(2500 * time.Millisecond)
	ac.close()
	time.Sleep(300 * time.Millisecond)
	ac = dial(t, a, alice)
	bc.noPresence(2500 * time.Millisecond)

	// Leaving for good: offline after the flap window, with lastSeenAt.
	ac.close()
	left := time.Now()
	ev := bc.expectPresence(alice, false, 10*time.Second)
	if d := time.Since(left); d < 1500*time.Millisecond {
		t.Fatalf("offline announced %s after the close, inside the 2 s flap window", d)
	}
	s := presenceOf(t, a, bob, alice)
	if s[alice].Online || s[alice].LastSeenAt == nil || *s[alice].LastSeenAt != *ev.LastSeenAt {
		t.Fatalf("after alice left, bob asks: %+v (event lastSeenAt %s)", s[alice], *ev.LastSeenAt)
	}
	if seen, err := time.Parse(time.RFC3339, *ev.LastSeenAt); err != nil || seen.Before(left.Add(-time.Second)) || seen.After(left.Add(time.Second)) {
		t.Fatalf("lastSeenAt %s, closed at %s (%v)", *ev.LastSeenAt, left.UTC(), err)
	}
	cc.noPresence(100 * time.Millisecond)

	m := a.Do("GET", "/metrics", "", nil)
	if !strings.Contains(string(m.Body), `chat_presence_events_total{result="sent"}`) {
		t.Fatal("/metrics has no chat_presence_events_total")
	}
}

func TestPresenceRequests(t *testing.T) {
	t.Parallel()
	a := platformtest.Start(t, platformtest.Config(t, storetest.NewSQLite(t)))
	tok := platformtest.Token(t, "bob")
	many := make([]string, 101)
	for i := range many {
		many[i] = "u" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i)})
	}
	for _, tc := range []struct{ name, query string }{
		{"no userIds", ""},
		{"empty userIds", "?userIds="},
		{"101 ids", "?userIds=" + strings.Join(many, ",")},
		{"bad id", "?userIds=alice,b%20b"},
		{"empty id", "?userIds=alice,,bob"},
		{"twice", "?userIds=alice&userIds=bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := a.Do("GET", "/api/chat/presence"+tc.query, tok, nil)
			if res.Status != http.StatusBadRequest || res.Problem(t) != "invalid_user_ids" {
				t.Fatalf("%d %s", res.Status, res.Body)
			}
		})
	}
	if res := a.Do("GET", "/api/chat/presence?userIds="+strings.Join(many[:100], ","), tok, nil); res.Status != http.StatusOK {
		t.Fatalf("100 ids: %d %s", res.Status, res.Body)
	}
	if res := a.Do("GET", "/api/chat/presence?userIds=alice", "", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", res.Status)
	}
}

// TestPresenceOff: features.presence false removes the route and the events.
func TestPresenceOff(t *testing.T) {
	t.Parallel()
	cfg := platformtest.Config(t, storetest.NewSQLite(t))
	cfg.Features.Presence = false
	a := platformtest.Start(t, cfg)
	createSession(t, a, "alice", "bob")
	if res := a.Do("GET", "/api/chat/presence?userIds=alice", platformtest.Token(t, "bob"), nil); res.Status != http.StatusNotFound {
		t.Fatalf("GET presence with the feature off: %d %s", res.Status, res.Body)
	}
	bc := dial(t, a, "bob")
	bc.subscribeEvents()
	dial(t, a, "alice")
	bc.noPresence(time.Second)
}
