// Package soak runs the real binary under mixed load (connect/disconnect
// churn over WebSocket and SockJS, sends over REST and STOMP, history and
// unread reads, typing) for TEST_CHAT_SOAK (e.g. 60s in CI, 10m for the
// long form), sampling the process's RSS and goroutine count, and fails on
// a growth trend after warm-up or on any 5xx answer.
package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/platform/platformtest/bintest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store/storetest"
)

const secret = "soak-secret-0123456789abcdef-0123456789"

type sample struct {
	at         time.Duration
	rssKiB     int64
	goroutines int64
}

func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("TEST_CHAT_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("soak runs when TEST_CHAT_SOAK is a duration (60s in CI, 10m for the long form)")
	}
	addr := bintest.FreeAddr(t)
	args := []string{"-set", "server.addr=" + addr, "-set", "auth.dev.enabled=false", "-set", "auth.jwt.hmac_secret=" + secret,
		"-set", "log.level=warn", "-set", "server.drain_delay=0s", "-set", "server.drain_spread=1s"}
	backend := "sqlite + memory relay"
	if os.Getenv(storetest.PostgresEnv) != "" && os.Getenv("TEST_CHAT_AMQP_URL") != "" {
		storage := storetest.NewPostgres(t)
		args = append(args, "-set", "storage.driver=postgres", "-set", "storage.dsn="+storage.DSN,
			"-set", "relay.driver=amqp", "-set", "relay.amqp.url="+os.Getenv("TEST_CHAT_AMQP_URL"),
			"-set", "commands.queue=chat.send.soak."+strconv.Itoa(os.Getpid()))
		backend = "postgres + rabbitmq"
	}
	p := bintest.Start(t, bintest.Build(t, "github.com/chat-service/chat/cmd/chat"), t.TempDir(), nil, args...)
	defer func() {
		if t.Failed() {
			t.Logf("service output:\n%s", p.Output())
		}
	}()
	base := "http://" + addr
	p.WaitReady(t, base)
	defer p.Terminate(t, 20*time.Second)

	l := &load{t: t, base: base, stop: make(chan struct{})}
	l.setup(20, 10)
	l.run()
	t.Logf("soak: %s on %s", d, backend)

	var samples []sample
	start := time.Now()
	every := max(d/30, time.Second)
	for time.Since(start) < d {
		time.Sleep(every)
		if !p.Alive() {
			t.Fatal("the service exited under load")
		}
		samples = append(samples, sample{at: time.Since(start), rssKiB: rss(t, p.Cmd.Process.Pid), goroutines: goroutines(t, base)})
	}
	close(l.stop)
	l.wg.Wait()

	for _, s := range samples {
		t.Logf("t=%5.1fs rss=%6d KiB goroutines=%5d", s.at.Seconds(), s.rssKiB, s.goroutines)
	}
	t.Logf("requests: %d ok, %d refused (429/503), %d 5xx; STOMP connections %d, sends %d", l.ok.Load(), l.refused.Load(), l.failed.Load(), l.conns.Load(), l.sends.Load())
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d requests answered 5xx (other than 503) under load: %s", n, l.lastFailure.Load())
	}
	if l.ok.Load() == 0 || l.conns.Load() == 0 {
		t.Fatal("the load did nothing")
	}
	// After warm-up (the first third), the last samples must not have grown
	// past the first ones by more than noise.
	post := samples[len(samples)/3:]
	if len(post) < 6 {
		t.Fatalf("only %d samples after warm-up", len(post))
	}
	first, last := mean(post[:3]), mean(post[len(post)-3:])
	if last.goroutines > first.goroutines*6/5+50 {
		t.Errorf("goroutines grew from %d to %d after warm-up", first.goroutines, last.goroutines)
	}
	if last.rssKiB > first.rssKiB*5/4+16<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB after warm-up", first.rssKiB, last.rssKiB)
	}
}

func mean(s []sample) sample {
	var m sample
	for _, x := range s {
		m.rssKiB += x.rssKiB
		m.goroutines += x.goroutines
	}
	m.rssKiB /= int64(len(s))
	m.goroutines /= int64(len(s))
	return m
}

func rss(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read RSS: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func goroutines(t *testing.T, base string) int64 {
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// load is the mixed client population.
type load struct {
	t        *testing.T
	base     string
	users    []string
	tokens   map[string]string
	sessions [][2]string // session id, a member
	stop     chan struct{}
	wg       sync.WaitGroup

	ok, refused, failed, conns, sends atomic.Int64
	lastFailure                       atomic.Value
}

func (l *load) setup(users, sessions int) {
	l.tokens = map[string]string{}
	for i := range users {
		u := "soak" + strconv.Itoa(i)
		l.users = append(l.users, u)
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": u, "iat": time.Now().Unix(), "exp": time.Now().Add(24 * time.Hour).Unix()}).SignedString([]byte(secret))
		if err != nil {
			l.t.Fatal(err)
		}
		l.tokens[u] = tok
	}
	for i := range sessions {
		a, b, c := l.users[i%users], l.users[(i+1)%users], l.users[(i+7)%users]
		status, body := l.do("POST", "/api/chat/sessions", a, map[string]any{"participants": []string{b, c}, "title": "soak " + strconv.Itoa(i)})
		if status != http.StatusCreated {
			l.t.Fatalf("create session: %d %s", status, body)
		}
		var s struct{ ID string }
		_ = json.Unmarshal(body, &s)
		l.sessions = append(l.sessions, [2]string{s.ID, a}, [2]string{s.ID, b}, [2]string{s.ID, c})
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func (l *load) do(method, path, user string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+l.tokens[user])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		l.failed.Add(1)
		l.lastFailure.Store(err.Error())
		return 0, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	switch {
	case res.StatusCode == 429 || res.StatusCode == 503:
		l.refused.Add(1)
	case res.StatusCode >= 500:
		l.failed.Add(1)
		l.lastFailure.Store(fmt.Sprintf("%s %s: %d %s", method, path, res.StatusCode, b))
	default:
		l.ok.Add(1)
	}
	return res.StatusCode, b
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// every runs fn until stop, pausing about d between runs.
func (l *load) every(d time.Duration, fn func(r *rand.Rand)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for !l.stopped() {
			fn(r)
			time.Sleep(d/2 + time.Duration(r.Int64N(int64(d))))
		}
	}()
}

func (l *load) run() {
	pick := func(r *rand.Rand) (string, string) { s := l.sessions[r.IntN(len(l.sessions))]; return s[0], s[1] }
	// REST sends and reads.
	for range 3 {
		l.every(60*time.Millisecond, func(r *rand.Rand) {
			sid, u := pick(r)
			l.do("POST", "/api/chat/sessions/"+sid+"/messages", u, map[string]string{"content": strings.Repeat("s", 1+r.IntN(400))})
			l.sends.Add(1)
		})
	}
	for range 2 {
		l.every(80*time.Millisecond, func(r *rand.Rand) {
			sid, u := pick(r)
			switch r.IntN(3) {
			case 0:
				l.do("GET", "/api/chat/sessions/"+sid+"/messages?limit=50", u, nil)
			case 1:
				l.do("GET", "/api/chat/unread", u, nil)
			default:
				l.do("GET", "/api/chat/sessions?limit=20", u, nil)
			}
		})
	}
	// WebSocket churn: connect, subscribe (with since-seq), type, send,
	// read for a while, leave (politely or not).
	for range 6 {
		l.every(200*time.Millisecond, func(r *rand.Rand) {
			sid, u := pick(r)
			l.stompVisit(r, sid, u)
		})
	}
	// SockJS churn: open an xhr-polling session, CONNECT, poll, abandon it.
	l.every(300*time.Millisecond, func(r *rand.Rand) {
		_, u := pick(r)
		l.sockjsVisit(r, u)
	})
}

func (l *load) stompVisit(r *rand.Rand, sid, user string) {
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(l.base, "http")+"/ws?access_token="+url.QueryEscape(l.tokens[user]), nil)
	if err != nil {
		return // refused by admission control, which is fine under churn
	}
	defer ws.Close()
	l.conns.Add(1)
	write := func(f *frame.Frame) error {
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return ws.WriteMessage(websocket.TextMessage, stomp.AppendFrame(nil, f, stomp.V12))
	}
	_ = write(frame.New(frame.CONNECT, "accept-version", "1.2", "host", "soak", "heart-beat", "0,0"))
	_ = write(frame.New(frame.SUBSCRIBE, "id", "m", "destination", stomp.QueueMessages))
	_ = write(frame.New(frame.SUBSCRIBE, "id", "e", "destination", stomp.QueueEvents))
	_ = write(frame.New(frame.SUBSCRIBE, "id", "t", "destination", stomp.TopicSessionPrefix+sid, "since-seq", strconv.Itoa(r.IntN(50))))
	stay := time.Now().Add(time.Duration(500+r.IntN(2000)) * time.Millisecond)
	go func() { // the reader; it ends when the socket closes
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for time.Now().Before(stay) && !l.stopped() {
		typing := frame.New(frame.SEND, "destination", stomp.AppTyping, "content-type", "application/json")
		typing.Body = []byte(`{"sessionId":"` + sid + `"}`)
		_ = write(typing)
		if r.IntN(4) == 0 {
			send := frame.New(frame.SEND, "destination", stomp.AppSend, "content-type", "application/json", "receipt", "r")
			send.Body = []byte(`{"sessionId":"` + sid + `","content":"over stomp"}`)
			_ = write(send)
			l.sends.Add(1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.IntN(2) == 0 {
		_ = write(frame.New(frame.DISCONNECT))
	}
}

func (l *load) sockjsVisit(r *rand.Rand, user string) {
	base := l.base + "/ws/000/soak-" + strconv.FormatUint(r.Uint64(), 36) + "-" + strconv.Itoa(r.IntN(1e6)) + "/"
	q := "?access_token=" + url.QueryEscape(l.tokens[user])
	post := func(kind string, body string) {
		res, err := client.Post(base+kind+q, "text/plain", strings.NewReader(body))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 && res.StatusCode != 503 {
			l.failed.Add(1)
			l.lastFailure.Store(fmt.Sprintf("sockjs %s: %d", kind, res.StatusCode))
		}
	}
	post("xhr", "")
	connect := string(stomp.AppendFrame(nil, frame.New(frame.CONNECT, "accept-version", "1.2", "host", "soak"), stomp.V12))
	b, _ := json.Marshal([]string{connect})
	post("xhr_send", string(b))
	post("xhr", "")
	l.conns.Add(1)
	// and never comes back: the session times out on the server
}
