package faults

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/platform/platformtest/rabbitmqtest"
	"github.com/chat-service/chat/modules/platform/platformtest/tcpproxy"
)

// TestFaultKill9 (a): two instances, clients sending (REST round-robin,
// STOMP with receipts) and receiving (one subscriber homed on each
// instance); one instance is killed with SIGKILL mid-traffic. Clients
// reconnect to the other and resume with since-seq: every accepted send is
// stored once, and every subscriber ends with every seq, each seq one
// message.
func TestFaultKill9(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("a"), c.start("b")
	sid := createSession(t, a, "alice", "bob", "carol")
	tr := newTraffic(t, sid, a, b)
	tr.subscribe("bob", 0)   // on a
	tr.subscribe("carol", 1) // on b
	tr.subscribe("carol", 0) // a second device, on a
	tr.restSender("alice", "rest", 10*time.Millisecond)
	tr.stompSender("bob", "stomp", 10*time.Millisecond) // connected to a
	time.Sleep(3 * time.Second)
	a.kill9(t)
	time.Sleep(4 * time.Second)
	tr.finish("alice")
}

// TestFaultRabbitMQRestart (c): RabbitMQ restarts while events are in
// flight, and sending stops right after. Instance b is paused (SIGSTOP)
// first, so that events pile up in its relay queue; the broker stops (with
// relay.amqp.persistent off it drops them), b resumes, the broker starts,
// and the senders stop. Subscribers that stay on one connection each, and
// never resubscribe, still end with every seq: b's relay consumer resumes
// and b recovers the lost messages from the store; with persistent events
// the broker kept them. It restarts the shared broker, so it runs only when
// TEST_CHAT_RABBITMQ_RESTART=1 (.ci/run does, alone).
func TestFaultRabbitMQRestart(t *testing.T) {
	rabbitmqtest.RequireRestart(t)
	for _, persistent := range []string{"false", "true"} {
		t.Run("persistent="+persistent, func(t *testing.T) {
			c := newCluster(t)
			c.extra = append(c.extra, "relay.amqp.persistent="+persistent)
			a, b := c.start("a"), c.start("b")
			sid := createSession(t, a, "alice", "bob", "carol")
			tr := newTraffic(t, sid, a, b)
			tr.subscribeSteady("bob", 0)                           // on a
			tr.subscribeSteady("carol", 1)                         // on b
			tr.subscribeSteady("bob", 1)                           // a second device, on b
			tr.restSender("alice", "rest", 10*time.Millisecond, a) // b only receives: it is paused below
			time.Sleep(2 * time.Second)

			b.pause(t)
			time.Sleep(time.Second) // a stores and publishes; b's queue fills
			rabbitmqtest.StopApp(t)
			b.resume(t)
			rabbitmqtest.StartApp(t)
			tr.finish("alice")
		})
	}
}

// TestFaultPostgresDown (b): PostgreSQL is unreachable for 10 s (the TCP
// proxy between both instances and the database refuses and cuts every
// connection; the shared server itself keeps running). REST sends get 503
// and nothing else, nothing is half-written, /readyz names the database,
// and everything works again afterwards without a restart.
func TestFaultPostgresDown(t *testing.T) {
	c := newCluster(t)
	proxy, dsn := tcpproxy.ForURL(t, c.dsn, "5432", "connect_timeout", "2")
	c.dsn = dsn
	a, b := c.start("a"), c.start("b")
	sid := createSession(t, a, "alice", "bob", "carol")
	tr := newTraffic(t, sid, a, b)
	tr.subscribe("bob", 0)
	tr.subscribe("carol", 1)
	tr.restSender("alice", "rest", 20*time.Millisecond)
	tr.stompSender("carol", "stomp", 20*time.Millisecond)
	time.Sleep(2 * time.Second)

	proxy.Cut()
	cut := time.Now()
	time.Sleep(3 * time.Second)
	for _, in := range []*instance{a, b} {
		status, body, err := do("GET", in.base+"/readyz", "", nil)
		if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(string(body), "database") {
			t.Errorf("%s /readyz during the outage: %d %s %v", in.name, status, body, err)
		}
	}
	time.Sleep(10*time.Second - time.Since(cut))
	proxy.Restore()

	// Both instances recover on their own.
	for _, in := range []*instance{a, b} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, _, err := do("GET", in.base+"/readyz", "", nil)
			if err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready 30 s after the database came back", in.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second)
	tr.mu.Lock()
	saw503 := tr.statuses[http.StatusServiceUnavailable]
	tr.mu.Unlock()
	if saw503 == 0 {
		t.Error("no REST send saw 503 during a 10 s database outage")
	}
	tr.finish("alice")
}

// TestFaultFlairBitHangs (d): the profile provider accepts connections and
// never answers. Sends are unaffected: each is stored and delivered, in
// about profiles.timeout at worst (the breaker then answers at once), with
// the sender's profile left out.
func TestFaultFlairBitHangs(t *testing.T) {
	var hang atomic.Bool
	release := make(chan struct{})
	fb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/internal/chat-service/can-chat":
			_ = json.NewEncoder(w).Encode(map[string]any{"allowed": true})
		case "/internal/chat-service/profiles":
			var ps []map[string]string
			for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
				ps = append(ps, map[string]string{"userId": id, "displayName": strings.ToUpper(id)})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"profiles": ps})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(release); fb.Close() })
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "flairbit.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	c.extra = []string{
		"profiles.provider=flairbit",
		"profiles.flairbit.base_url=" + fb.URL,
		"profiles.flairbit.service_auth.private_key_file=" + keyFile,
		"profiles.flairbit.service_auth.key_id=k1",
		"profiles.timeout=500ms",
		"profiles.cache.ttl=1s", "profiles.cache.stale_for=0s", "profiles.cache.negative_ttl=0s",
	}
	a, b := c.start("a"), c.start("b")
	sid := createSession(t, a, "alice", "bob", "carol") // FlairBit still answers: CanChat allows it
	tr := newTraffic(t, sid, a, b)
	tr.subscribe("bob", 0)
	tr.subscribe("carol", 1)
	time.Sleep(1100 * time.Millisecond) // the cached profiles go stale

	hang.Store(true)
	tok := token(t, "alice")
	for i := range 20 {
		in := []*instance{a, b}[i%2]
		start := time.Now()
		status, body, err := do("POST", in.base+"/api/chat/sessions/"+sid+"/messages", tok, map[string]string{"content": "while flairbit hangs", "clientMessageId": "hang-" + string(rune('a'+i))})
		took := time.Since(start)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("send %d with FlairBit hanging: %d %s %v", i, status, body, err)
		}
		tr.mu.Lock()
		tr.accepted["hang-"+string(rune('a'+i))] = true
		tr.mu.Unlock()
		if took > 5*time.Second { // profiles.timeout is 500 ms; a hang would block for ever
			t.Errorf("send %d took %s with FlairBit hanging", i, took)
		}
		var m struct {
			Sender *struct{ DisplayName string } `json:"sender"`
		}
		_ = json.Unmarshal(body, &m)
		if m.Sender != nil && m.Sender.DisplayName != "" {
			t.Errorf("send %d: a profile %+v while FlairBit hangs and nothing fresh is cached", i, m.Sender)
		}
	}
	tr.finish("alice")
}
