package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/chat-service/chat/modules/auth/authtest"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/stomp"
)

// sockjsClient speaks SockJS xhr-polling to one session.
type sockjsClient struct {
	t     *testing.T
	base  string // .../ws/{server}/{session}/
	token string // "" sends none
}

func (c *sockjsClient) url(kind string) string {
	u := c.base + kind
	if c.token != "" {
		u += "?access_token=" + url.QueryEscape(c.token)
	}
	return u
}

// post sends one request and returns status and body.
func (c *sockjsClient) post(kind string, body []byte) (int, string) {
	c.t.Helper()
	resp, err := http.Post(c.url(kind), "text/plain", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (c *sockjsClient) poll() string {
	c.t.Helper()
	status, body := c.post("xhr", nil)
	if status != http.StatusOK {
		c.t.Fatalf("poll: %d %s", status, body)
	}
	return body
}

func (c *sockjsClient) send(frames ...string) (int, string) {
	c.t.Helper()
	return c.post("xhr_send", sockjsArray(c.t, frames...))
}

func problemCode(t *testing.T, body string) string {
	t.Helper()
	var p struct{ Code string }
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("not a problem: %q", body)
	}
	return p.Code
}

// TestSockJSSessionBoundToUser: the SockJS session id is bound to the user
// who opened it. A request naming it with no token, or with another user's
// token, is refused without touching the session: no forged SEND is
// stored, and the victim's receiver cannot be taken over.
func TestSockJSSessionBoundToUser(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	sid := s.b.CreateSession("alice", "bob")
	base := s.http.URL + "/ws/000/victim-session-00001/"
	bob := &sockjsClient{t: t, base: base, token: authtest.Token(t, "bob")}
	if got := bob.poll(); got != "o" {
		t.Fatalf("open %q", got)
	}
	if status, body := bob.send(connectFrame()); status != http.StatusNoContent {
		t.Fatalf("bob's own send: %d %s", status, body)
	}
	if got := decodeSockJS(t, bob.poll()); !strings.HasPrefix(got[0], "CONNECTED\n") {
		t.Fatalf("got %q", got)
	}
	forged := "SEND\ndestination:" + stomp.AppSend + "\ncontent-type:application/json\n\n" +
		`{"sessionId":"` + sid + `","content":"forged"}` + "\x00"
	for _, tc := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", http.StatusUnauthorized, "unauthorized"},
		{"another user's token", authtest.Token(t, "alice"), http.StatusForbidden, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attacker := &sockjsClient{t: t, base: base, token: tc.token}
			if status, body := attacker.send(forged); status != tc.status || problemCode(t, body) != tc.code {
				t.Fatalf("forged xhr_send: %d %s", status, body)
			}
			// Nor may the attacker attach a receiver to read bob's frames.
			if status, body := attacker.post("xhr", nil); status != tc.status || problemCode(t, body) != tc.code {
				t.Fatalf("foreign receiver: %d %s", status, body)
			}
		})
	}
	// bob's session is intact: his own SEND goes through and is his.
	if status, body := bob.send(strings.Replace(forged, "forged", "real", 1)); status != http.StatusNoContent {
		t.Fatalf("bob's send: %d %s", status, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.b.Messages(sid)) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	msgs := s.b.Messages(sid)
	if len(msgs) != 1 || msgs[0].Content != "real" || msgs[0].SenderID != "bob" {
		t.Fatalf("stored messages: %+v", msgs)
	}

	// A session id shorter than 16 characters is refused.
	short := &sockjsClient{t: t, base: s.http.URL + "/ws/000/abcdefgh/", token: authtest.Token(t, "bob")}
	if status, body := short.post("xhr", nil); status != http.StatusBadRequest || problemCode(t, body) != "invalid_session_id" {
		t.Fatalf("8-character session id: %d %s", status, body)
	}
	// xhr_send to a session nobody opened.
	ghost := &sockjsClient{t: t, base: s.http.URL + "/ws/000/nobody-opened-this-1/", token: authtest.Token(t, "bob")}
	if status, body := ghost.send(connectFrame()); status != http.StatusNotFound {
		t.Fatalf("unknown session: %d %s", status, body)
	}
}

// TestSockJSSessionIDNotLogged: the access log shows the SockJS session
// segment as {session}, never the id itself.
func TestSockJSSessionIDNotLogged(t *testing.T) {
	t.Parallel()
	var logs safeLog
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s := newServer(t, tweak{})
	r := mux.NewRouter()
	s.gw.Register(r)
	srv, err := httpserver.New(httpserver.ServerParams{Router: r, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	const secret = "secret-session-id-777"
	c := &sockjsClient{t: t, base: hs.URL + "/ws/000/" + secret + "/", token: authtest.Token(t, "bob")}
	if got := c.poll(); got != "o" {
		t.Fatalf("open %q", got)
	}
	c.send(connectFrame())
	out := logs.String()
	if !strings.Contains(out, "/ws/000/{session}/xhr") || !strings.Contains(out, "/ws/000/{session}/xhr_send") {
		t.Fatalf("access log lacks the SockJS requests:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the session id is in the log:\n%s", out)
	}
}

// TestSockJSIframeNotServed: sockjs-go's iframe page loads the SockJS
// client from a CDN; it is not served.
func TestSockJSIframeNotServed(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	for _, p := range []string{"/ws/iframe.html", "/ws/iframe-1.6.1.html"} {
		resp, err := http.Get(s.http.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || bytes.Contains(b, []byte("<script")) {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
}

// TestSockJSReceiverThatNeverPolls: sockjs-go keeps what a session is sent
// until the client's next poll, without bound. A client that subscribes
// and never polls again is a slow consumer once that backlog passes the
// byte bound: its session is closed and the heap stays bounded (before,
// it grew by everything published).
func TestSockJSReceiverThatNeverPolls(t *testing.T) { // not parallel: it measures the heap
	const budget = 64 << 10
	s := newServer(t, tweak{
		stmp: func(o *stomp.Options) { o.QueueBytes = budget },
		gw:   func(o *gateway.Options) { o.SockJSDisconnect = time.Minute },
	})
	sid := s.b.CreateSession("alice", "bob")
	c := &sockjsClient{t: t, base: s.http.URL + "/ws/000/never-polls-again-1/", token: authtest.Token(t, "bob")}
	if got := c.poll(); got != "o" {
		t.Fatalf("open %q", got)
	}
	c.send(connectFrame(), "SUBSCRIBE\nid:1\ndestination:"+stomp.TopicSessionPrefix+sid+"\nreceipt:r\n\n\x00")
	var got []string
	for len(got) < 2 {
		got = append(got, decodeSockJS(t, c.poll())...)
	}
	// From here on bob never polls.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	content := strings.Repeat("x", 20000)
	for range 1250 { // about 25 MB of MESSAGE frames, at a pace the writer keeps up with
		s.b.Publish(sid, "alice", content)
		time.Sleep(2 * time.Millisecond)
		if counterValue(t, s, "chat_stomp_slow_consumer_disconnects_total") > 0 {
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(t, s, "chat_stomp_slow_consumer_disconnects_total") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no slow-consumer disconnect for a SockJS client that stopped polling")
		}
		time.Sleep(5 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Fatalf("heap grew by %d MiB for one client that does not poll", grew>>20)
	}
	if body := c.poll(); !strings.HasPrefix(body, `c[4013,"slow consumer"]`) {
		t.Fatalf("next poll: %q, want the close frame", body)
	}
}

func counterValue(t *testing.T, s *server, name string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			total := 0.0
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			return total
		}
	}
	return 0
}

// safeLog is a log sink safe for concurrent use.
type safeLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *safeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *safeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
