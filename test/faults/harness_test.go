// Package faults is the fault suite: the real binary (go build ./cmd/chat),
// two instances on PostgreSQL + RabbitMQ started as child processes on
// loopback ports, clients sending (REST and STOMP) and receiving (STOMP
// with since-seq) throughout, and one fault per test. Each test has its own
// PostgreSQL database and command queue, created and dropped by the test.
package faults

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/platform/platformtest/bintest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store/storetest"
)

const secret = "fault-suite-secret-0123456789abcdef"

// cluster is what the instances of one test share.
type cluster struct {
	t       *testing.T
	bin     string // cmd/chat, built for the test
	dsn     string
	amqpURL string
	queue   string
	extra   []string // more -set key=value for every instance
}

// newCluster gives the test its own database and command queue; it skips
// without PostgreSQL and RabbitMQ.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	storage := storetest.NewPostgres(t) // skips with "needs TEST_CHAT_POSTGRES_DSN"
	amqpURL := os.Getenv("TEST_CHAT_AMQP_URL")
	if amqpURL == "" {
		t.Skip("needs TEST_CHAT_AMQP_URL")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return &cluster{t: t, dsn: storage.DSN, amqpURL: amqpURL, queue: "chat.send.faults." + hex.EncodeToString(suffix)}
}

// instance is one running chat process.
type instance struct {
	name string
	base string // http://127.0.0.1:port
	p    *bintest.Process
}

func (in *instance) ws() string { return "ws" + strings.TrimPrefix(in.base, "http") }

func (in *instance) alive() bool { return in.p.Alive() }

// start runs one instance and waits for /readyz.
func (c *cluster) start(name string) *instance {
	t := c.t
	t.Helper()
	addr := bintest.FreeAddr(t)
	args := []string{
		"-set", "server.addr=" + addr,
		"-set", "server.drain_delay=0s", "-set", "server.drain_spread=0s", "-set", "server.shutdown_timeout=3s",
		"-set", "auth.dev.enabled=false", "-set", "auth.jwt.hmac_secret=" + secret,
		"-set", "storage.driver=postgres", "-set", "storage.dsn=" + c.dsn,
		"-set", "relay.driver=amqp", "-set", "relay.amqp.url=" + c.amqpURL,
		"-set", "commands.queue=" + c.queue,
		"-set", "outbox.poll_interval=20ms",
		"-set", "limits.rate_per_second=1000", "-set", "limits.burst=1000",
		"-set", "limits.read_rate_per_second=1000",
		"-set", "log.level=warn",
	}
	for _, kv := range c.extra {
		args = append(args, "-set", kv)
	}
	if c.bin == "" {
		c.bin = bintest.Build(t, "github.com/chat-service/chat/cmd/chat")
	}
	p := bintest.Start(t, c.bin, t.TempDir(), nil, args...)
	in := &instance{name: name, base: "http://" + addr, p: p}
	t.Cleanup(func() { // before Start's kill: a graceful stop first
		if in.alive() {
			_ = p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.Done():
			case <-time.After(15 * time.Second):
				_ = p.Cmd.Process.Kill()
				<-p.Done()
			}
		}
		if t.Failed() {
			t.Logf("instance %s output:\n%s", name, p.Output())
		}
	})
	p.WaitReady(t, in.base)
	return in
}

// pause stops the process (SIGSTOP) until resume (SIGCONT): its sockets
// stay open and nothing is read from them.
func (in *instance) pause(t *testing.T) {
	if err := in.p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.p.Cmd.Process.Signal(syscall.SIGCONT) }) // never leave it stopped
}

func (in *instance) resume(t *testing.T) {
	if err := in.p.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// kill9 ends the instance with SIGKILL: no drain, no goodbye.
func (in *instance) kill9(t *testing.T) {
	if err := in.p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-in.p.Done()
}

func token(t *testing.T, user string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

// do is one REST call; err is a transport error (the instance is gone).
func do(method, u, tok string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func createSession(t *testing.T, in *instance, creator string, others ...string) string {
	t.Helper()
	status, body, err := do("POST", in.base+"/api/chat/sessions", token(t, creator), map[string]any{"participants": others, "title": "faults"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create session: %d %s %v", status, body, err)
	}
	var s struct{ ID string }
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s.ID
}

type message struct {
	ID              string `json:"id"`
	Seq             int64  `json:"seq"`
	ClientMessageID string `json:"clientMessageId"`
}

// history pages every stored message of the session, ascending.
func history(t *testing.T, in *instance, user, sid string) []message {
	t.Helper()
	var all []message
	after := int64(0)
	for {
		status, body, err := do("GET", in.base+"/api/chat/sessions/"+sid+"/messages?limit=200&afterSeq="+strconv.FormatInt(after, 10), token(t, user), nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("history: %d %s %v", status, body, err)
		}
		var page struct {
			Messages []message
			HasMore  bool
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			return all
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

// stompConn is a small STOMP 1.2 client over a raw WebSocket.
type stompConn struct {
	ws  *websocket.Conn
	dec *stomp.Decoder
	// beats: the server sends heart-beats, and next returns (nil, nil) after
	// a read that completed no frame, so a quiet connection can be watched
	// without a read timeout (after which gorilla cannot read on).
	beats bool
}

// dialSteady connects with server heart-beats every 500 ms.
func dialSteady(in *instance, tok string) (*stompConn, error) {
	return dialSTOMP(in, tok, "heart-beat", "0,500")
}

func dialSTOMP(in *instance, tok string, headers ...string) (*stompConn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial(in.ws()+"/ws?access_token="+url.QueryEscape(tok), nil)
	if err != nil {
		return nil, err
	}
	c := &stompConn{ws: ws, dec: stomp.NewDecoder(1 << 20)}
	c.dec.SetVersion(stomp.V12)
	if err := c.send(frame.New(frame.CONNECT, append([]string{"accept-version", "1.2", "host", "chat"}, headers...)...)); err != nil {
		ws.Close()
		return nil, err
	}
	f, err := c.next(10 * time.Second)
	if err != nil || f.Command != frame.CONNECTED {
		ws.Close()
		return nil, fmt.Errorf("CONNECT: %v %v", f, err)
	}
	c.beats = len(headers) > 0
	return c, nil
}

func (c *stompConn) send(f *frame.Frame) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, stomp.AppendFrame(nil, f, stomp.V12))
}

func (c *stompConn) next(timeout time.Duration) (*frame.Frame, error) {
	for {
		if f, err := c.dec.Next(); err != nil || f != nil {
			return f, err
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		c.dec.Write(b)
		if c.beats {
			return c.dec.Next()
		}
	}
}

func (c *stompConn) close() { _ = c.ws.Close() }

// traffic runs senders and subscribers against the live instances until
// stop, and then checks what a user would: nothing accepted is lost,
// every subscriber ends with every seq, no seq means two messages.
type traffic struct {
	t         *testing.T
	sid       string
	instances []*instance

	mu       sync.Mutex
	accepted map[string]bool // clientMessageIds the service accepted (201/200 or RECEIPT)
	statuses map[int]int     // REST send statuses seen
	problems []string        // what a client must never see
	subs     []*subscriber
	last     int64          // the session's lastSeq once the senders stopped; 0 before
	senders  sync.WaitGroup // restSender, stompSender
	wg       sync.WaitGroup // subscribers
	stop     chan struct{}
}

func newTraffic(t *testing.T, sid string, instances ...*instance) *traffic {
	return &traffic{t: t, sid: sid, instances: instances, accepted: map[string]bool{}, statuses: map[int]int{}, stop: make(chan struct{})}
}

func (tr *traffic) problem(format string, args ...any) {
	tr.mu.Lock()
	tr.problems = append(tr.problems, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

// live lists the instances still running, starting from the i-th.
func (tr *traffic) live(i int) []*instance {
	var out []*instance
	for k := range tr.instances {
		in := tr.instances[(i+k)%len(tr.instances)]
		if in.alive() {
			out = append(out, in)
		}
	}
	return out
}

func (tr *traffic) stopped() bool {
	select {
	case <-tr.stop:
		return true
	default:
		return false
	}
}

// restSender sends over REST round-robin (or to the instances named in
// only), retrying each clientMessageId until the service accepts it. REST
// answers other than 201, 200 and 503 are problems.
func (tr *traffic) restSender(user, prefix string, every time.Duration, only ...*instance) {
	tr.senders.Add(1)
	go func() {
		defer tr.senders.Done()
		tok := token(tr.t, user)
		for i := 0; !tr.stopped(); i++ {
			cmid := fmt.Sprintf("%s-%d", prefix, i)
			for attempt := 0; ; attempt++ {
				live := tr.live(i + attempt)
				if len(only) > 0 {
					live = only
				}
				if len(live) == 0 {
					tr.problem("no instance left")
					return
				}
				status, body, err := do("POST", live[0].base+"/api/chat/sessions/"+tr.sid+"/messages", tok, map[string]string{"content": "m " + cmid, "clientMessageId": cmid})
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the instance died under the request; retry elsewhere
					continue
				}
				tr.mu.Lock()
				tr.statuses[status]++
				tr.mu.Unlock()
				if status == http.StatusCreated || status == http.StatusOK {
					tr.mu.Lock()
					tr.accepted[cmid] = true
					tr.mu.Unlock()
					break
				}
				if status != http.StatusServiceUnavailable {
					tr.problem("REST send %s: %d %s", cmid, status, body)
				}
				if tr.stopped() && attempt > 200 {
					tr.problem("REST send %s never accepted", cmid)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(every)
		}
	}()
}

// stompSender sends /app/chat.send with receipts over STOMP, reconnecting
// to a live instance when its connection drops, and retrying a
// clientMessageId until a RECEIPT says it is durably accepted.
func (tr *traffic) stompSender(user, prefix string, every time.Duration) {
	tr.senders.Add(1)
	go func() {
		defer tr.senders.Done()
		tok := token(tr.t, user)
		var c *stompConn
		defer func() {
			if c != nil {
				c.close()
			}
		}()
		for i := 0; !tr.stopped(); i++ {
			cmid := fmt.Sprintf("%s-%d", prefix, i)
			for attempt := 0; ; attempt++ {
				if c == nil {
					live := tr.live(attempt)
					if len(live) == 0 {
						tr.problem("no instance left")
						return
					}
					var err error
					if c, err = dialSTOMP(live[0], tok); err != nil {
						c = nil
						time.Sleep(100 * time.Millisecond)
						continue
					}
					if err := c.send(frame.New(frame.SUBSCRIBE, "id", "errors", "destination", stomp.QueueErrors)); err != nil {
						c.close()
						c = nil
						continue
					}
				}
				receipt := cmid + "/" + strconv.Itoa(attempt)
				body, _ := json.Marshal(map[string]string{"sessionId": tr.sid, "content": "s " + cmid, "clientMessageId": cmid})
				f := frame.New(frame.SEND, "destination", stomp.AppSend, "content-type", "application/json", "receipt", receipt)
				f.Body = body
				ok, err := tr.awaitReceipt(c, f, receipt)
				if err != nil {
					c.close()
					c = nil
					continue
				}
				if ok {
					tr.mu.Lock()
					tr.accepted[cmid] = true
					tr.mu.Unlock()
					break
				}
				time.Sleep(100 * time.Millisecond) // a problem (503): retry
			}
			time.Sleep(every)
		}
	}()
}

// awaitReceipt sends f and waits for its RECEIPT (true) or a problem on
// /user/queue/errors naming it (false).
func (tr *traffic) awaitReceipt(c *stompConn, f *frame.Frame, receipt string) (bool, error) {
	if err := c.send(f); err != nil {
		return false, err
	}
	for {
		g, err := c.next(15 * time.Second)
		if err != nil {
			return false, err
		}
		switch {
		case g.Command == frame.RECEIPT && g.Header.Get("receipt-id") == receipt:
			return true, nil
		case g.Command == frame.MESSAGE && g.Header.Get("receipt-id") == receipt:
			var p struct {
				Status int
				Code   string
			}
			_ = json.Unmarshal(g.Body, &p) // checked below
			if p.Status != http.StatusServiceUnavailable {
				tr.problem("STOMP send refused: %s", g.Body)
			}
			return false, nil
		case g.Command == frame.ERROR:
			return false, errors.New("ERROR " + g.Header.Get("message"))
		}
	}
}

// subscriber follows the session topic with since-seq, reconnecting to a
// live instance whenever its connection drops.
type subscriber struct {
	tr   *traffic
	user string
	home int
	// steady: one connection for the whole test; its end is a problem, and
	// the subscriber never resubscribes with since-seq to fill a gap.
	steady bool

	mu   sync.Mutex
	seen map[int64]string // seq → message id
}

func (tr *traffic) subscribe(user string, home int) *subscriber {
	return tr.start(&subscriber{tr: tr, user: user, home: home, seen: map[int64]string{}})
}

// subscribeSteady subscribes once, with server heart-beats, and stays: what
// it misses it can only get from the service, unasked.
func (tr *traffic) subscribeSteady(user string, home int) *subscriber {
	return tr.start(&subscriber{tr: tr, user: user, home: home, steady: true, seen: map[int64]string{}})
}

func (tr *traffic) start(s *subscriber) *subscriber {
	tr.subs = append(tr.subs, s)
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		s.run()
	}()
	return s
}

// contiguous is the highest n such that seqs 1..n were all seen.
func (s *subscriber) contiguous() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(0)
	for s.seen[n+1] != "" {
		n++
	}
	return n
}

func (s *subscriber) record(seq int64, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.seen[seq]; ok && prev != id {
		s.tr.problem("%s: seq %d delivered as two messages, %s and %s", s.user, seq, prev, id)
		return
	}
	s.seen[seq] = id
}

func (s *subscriber) run() {
	tok := token(s.tr.t, s.user)
	for attempt := 0; ; attempt++ {
		if s.tr.stopped() && s.done() {
			return
		}
		live := s.tr.live(s.home + attempt)
		if len(live) == 0 {
			return
		}
		dial := dialSTOMP
		if s.steady {
			dial = func(in *instance, tok string, _ ...string) (*stompConn, error) { return dialSteady(in, tok) }
		}
		c, err := dial(live[0], tok)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.follow(c, live[0])
		c.close()
		if s.steady && !(s.tr.stopped() && s.done()) {
			s.tr.problem("%s: the steady connection to %s ended with seqs 1..%d", s.user, live[0].name, s.contiguous())
			return
		}
	}
}

// done reports whether the subscriber has everything the session holds.
func (s *subscriber) done() bool {
	return s.tr.finalSeq() > 0 && s.contiguous() >= s.tr.finalSeq()
}

// follow subscribes with since-seq and records until the connection ends
// or the subscriber has everything.
func (s *subscriber) follow(c *stompConn, in *instance) {
	since := strconv.FormatInt(s.contiguous(), 10)
	if err := c.send(frame.New(frame.SUBSCRIBE, "id", "t", "destination", stomp.TopicSessionPrefix+s.tr.sid, "since-seq", since)); err != nil {
		return
	}
	for {
		if s.tr.stopped() && s.done() {
			return
		}
		quiet := 3 * time.Second
		if s.steady {
			quiet = 30 * time.Second // heart-beats keep it short unless the instance is paused
		}
		f, err := c.next(quiet)
		if err != nil { // gone, or quiet for that long (gorilla cannot read on after a timeout): resubscribe anew
			return
		}
		if f == nil { // a heart-beat
			continue
		}
		if f.Command == frame.ERROR {
			return
		}
		if f.Command != frame.MESSAGE {
			continue
		}
		var ev struct {
			Type    string
			FromSeq *int64
			Message *message
		}
		if err := json.Unmarshal(f.Body, &ev); err != nil {
			s.tr.problem("%s: event %q: %v", s.user, f.Body, err)
			continue
		}
		switch ev.Type {
		case "message":
			s.record(ev.Message.Seq, ev.Message.ID)
		case "resync": // page the gap over REST, as a client does
			for _, m := range history(s.tr.t, in, s.user, s.tr.sid) {
				s.record(m.Seq, m.ID)
			}
		}
	}
}

// finalSeq is the session's lastSeq once traffic has stopped, else 0.
func (tr *traffic) finalSeq() int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.last
}

// finish stops the senders, waits until every subscriber has every seq,
// and checks the store and the deliveries.
func (tr *traffic) finish(user string) {
	t := tr.t
	t.Helper()
	close(tr.stop)
	began := time.Now()
	live := tr.live(0)
	if len(live) == 0 {
		t.Fatal("no instance left")
	}
	// Senders finish (get accepted) their current message first.
	sendersDone := make(chan struct{})
	go func() { tr.senders.Wait(); close(sendersDone) }()
	select {
	case <-sendersDone:
	case <-time.After(60 * time.Second):
		t.Fatal("senders still retrying 60 s after the end")
	}
	t.Logf("senders stopped after %s", time.Since(began))
	// STOMP sends are stored by a command consumer after their RECEIPT:
	// wait until every accepted one is in the store.
	var msgs []message
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs = history(t, live[0], user, tr.sid)
		have := map[string]bool{}
		for _, m := range msgs {
			have[m.ClientMessageID] = true
		}
		missing := 0
		tr.mu.Lock()
		for cmid := range tr.accepted {
			if !have[cmid] {
				missing++
			}
		}
		tr.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	tr.mu.Lock()
	tr.last = int64(len(msgs))
	tr.mu.Unlock()

	t.Logf("store complete after %s", time.Since(began))
	done := make(chan struct{})
	go func() { tr.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		for _, s := range tr.subs {
			t.Errorf("%s has seqs 1..%d of %d", s.user, s.contiguous(), len(msgs))
		}
		t.Fatal("subscribers did not catch up within 60 s")
	}

	t.Logf("subscribers caught up after %s", time.Since(began))
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, p := range tr.problems {
		t.Error(p)
	}
	stored := map[string]int{}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored seqs are not 1..%d: position %d has %d", len(msgs), i, m.Seq)
		}
		stored[m.ClientMessageID]++
	}
	for cmid, n := range stored {
		if n > 1 {
			t.Errorf("clientMessageId %s stored %d times", cmid, n)
		}
	}
	for cmid := range tr.accepted {
		if stored[cmid] != 1 {
			t.Errorf("accepted %s is not stored", cmid)
		}
	}
	for _, s := range tr.subs {
		s.mu.Lock()
		for _, m := range msgs {
			if id := s.seen[m.Seq]; id != m.ID {
				t.Errorf("%s: seq %d delivered as %q, stored as %s", s.user, m.Seq, id, m.ID)
				break
			}
		}
		if len(s.seen) != len(msgs) {
			t.Errorf("%s saw %d seqs, the session has %d", s.user, len(s.seen), len(msgs))
		}
		s.mu.Unlock()
	}
	t.Logf("%d messages stored, %d accepted by clients; REST send statuses %v", len(msgs), len(tr.accepted), tr.statuses)
	if len(tr.accepted) == 0 {
		t.Fatal("no traffic")
	}
}
