package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chat-service/chat/cmd/internal/procstat"
)

func TestParseArgsDefaults(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(o options) bool
	}{
		{[]string{"pairs"}, func(o options) bool {
			return o.shape == "pairs" && o.sessions == 200 && o.rate == 5 && o.peer == "" && !o.compare && o.receipts
		}},
		{[]string{"groups"}, func(o options) bool { return o.sessions == 1000 && o.members == 10 && o.rate == 1 }},
		{[]string{"fanout"}, func(o options) bool { return o.conns == 1000 && o.rate == 100 && o.users == 100 }},
		{[]string{"idle"}, func(o options) bool { return o.conns == 10000 }},
		{[]string{"churn"}, func(o options) bool { return o.conns == 50 && o.count == 20000 && o.rate == 0 }},
		// flags before and after the shape, compare in front
		{[]string{"-duration", "5s", "compare", "pairs", "-sessions", "7", "-rate", "2.5"}, func(o options) bool {
			return o.compare && o.peer == "rabbitmq" && o.shape == "pairs" && o.sessions == 7 && o.rate == 2.5 && o.duration == 5*time.Second
		}},
		{[]string{"-peer", "rabbitmq", "fanout", "-conns", "10"}, func(o options) bool {
			return o.peer == "rabbitmq" && !o.compare && o.conns == 10 && o.peerURL == "ws://127.0.0.1:15674/ws" && o.peerLogin == "guest"
		}},
		{[]string{"-conns", "10", "-users", "50", "fanout"}, func(o options) bool { return o.users == 10 }}, // no user without a connection
		{[]string{"-url", "http://127.0.0.1:8080", "-pid", "42", "idle"}, func(o options) bool { return slices.Equal(o.pids, []int{42}) }},
		{[]string{"-url", "http://localhost:8080", "-server-pid", "43", "pairs"}, func(o options) bool {
			return slices.Equal(o.pids, []int{43}) && slices.Equal(o.urls, []string{"http://localhost:8080"})
		}},
		{[]string{"-receipts=false", "groups", "-members", "3"}, func(o options) bool { return !o.receipts && o.members == 3 }},
	} {
		o, err := parseArgs(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !tc.check(o) {
			t.Errorf("%q: %+v", tc.args, o)
		}
	}
}

func TestParseArgsRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{nil, "one shape expected"},
		{[]string{"pairs", "groups"}, "one shape expected"},
		{[]string{"compare"}, "one shape expected"},
		{[]string{"storm"}, `unknown shape "storm"`},
		{[]string{"direct"}, `"direct" is now "pairs"`},
		{[]string{"-members", "5", "pairs"}, "-members applies to groups only"},
		{[]string{"-sessions", "5", "fanout"}, "-sessions applies to pairs, groups only"},
		{[]string{"idle", "-rate", "5"}, "-rate applies to"},
		{[]string{"-count", "5", "pairs"}, "-count applies to churn only"},
		{[]string{"-peer", "kafka", "pairs"}, `unknown peer "kafka"`},
		{[]string{"-peer", "rabbitmq", "compare", "pairs"}, "-peer is not needed"},
		{[]string{"-duration", "0s", "pairs"}, "-duration must be in"},
		{[]string{"-duration", "11m", "pairs"}, "-duration must be in"},
		{[]string{"-rate", "-1", "pairs"}, "-rate must be in"},
		{[]string{"-rate", "1e6", "fanout"}, "-rate must be in"},
		{[]string{"-rate", "-1", "churn"}, "-rate must be in [0"},
		{[]string{"-members", "1", "groups"}, "-members must be in"},
		{[]string{"-count", "0", "churn"}, "-count must be in"},
		{[]string{"-pad", "100000", "pairs"}, "-pad must be in"},
		{[]string{"-sessions", "60000", "pairs"}, "120000 connections asked for"},
		{[]string{"-sessions", "20000", "-members", "10", "groups"}, "200000 connections asked for"},
		{[]string{"-url", "http://127.0.0.1:8080", "idle"}, "give -server-pid"},
		{[]string{"-url", "http://127.0.0.1:8080", "compare", "idle"}, "give -server-pid"},
		{[]string{"-url", "http://10.1.2.3:8080", "pairs"}, "not a loopback address"},
		{[]string{"-url", "http://example.com", "pairs"}, "not a loopback address"},
		{[]string{"-url", "https://127.0.0.1", "pairs"}, "want a http:// URL"},
		{[]string{"-peer", "rabbitmq", "-peer-url", "ws://192.168.0.5:15674/ws", "pairs"}, "not a loopback address"},
		{[]string{"compare", "-peer-url", "wss://127.0.0.1:15674/ws", "pairs"}, "want a ws:// URL"},
		{[]string{"-nosuchflag", "pairs"}, "not defined"},
	} {
		_, err := parseArgs(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:1": true, "127.8.9.10:1": true, "[::1]:1": true, "localhost:1": true,
		"10.0.0.1:1": false, "example.com:80": false, "[2001:db8::1]:80": false, "0.0.0.0:80": false, "127.0.0.1": false,
	} {
		if err := loopbackOnly(addr); (err == nil) != ok {
			t.Errorf("loopbackOnly(%q) = %v", addr, err)
		}
	}
	if err := checkLoopbackURL("http://192.168.1.1:8080", "http"); err == nil {
		t.Error("a LAN URL was accepted")
	}
	if err := checkLoopbackURL("ws://localhost/ws", "ws"); err != nil {
		t.Errorf("ws://localhost/ws: %v", err)
	}
	// The dialer itself refuses, whatever the flags said.
	if _, err := dialWS(t.Context(), "ws://192.0.2.1:15674/ws", "v12.stomp"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("dialWS to a TEST-NET address: %v", err)
	}
}

func TestDerive(t *testing.T) {
	r := result{
		Shape: "pairs", Connections: 400, Sent: 1000, Expected: 2000, Delivered: 1900, Accepted: 1000,
		MeasuredSeconds: 20, ServerMeasured: true, ServerCPUSeconds: 1.9,
	}
	r.derive()
	if r.Missing != 100 || r.DeliveriesPerS != 95 || r.ServerCPU != 0.095 {
		t.Errorf("missing %d, deliveries/s %v, cores %v", r.Missing, r.DeliveriesPerS, r.ServerCPU)
	}
	if r.CPUPerDeliveryUs != 1000 || r.CPUPerSendUs != 1900 || r.CPUPerCycleUs != 0 {
		t.Errorf("µs per delivery %v, per send %v, per cycle %v", r.CPUPerDeliveryUs, r.CPUPerSendUs, r.CPUPerCycleUs)
	}

	// More delivered than expected (duplicates) is not negative missing.
	d := result{Expected: 10, Delivered: 12}
	d.derive()
	if d.Missing != 0 {
		t.Errorf("missing %d", d.Missing)
	}

	// Without the server's CPU there is no per-unit figure, not a zero one
	// that reads as free.
	u := result{Sent: 10, Delivered: 10, MeasuredSeconds: 1, ServerCPUSeconds: 5}
	u.derive()
	if u.ServerCPU != 0 || u.CPUPerDeliveryUs != 0 || u.CPUPerSendUs != 0 {
		t.Errorf("unmeasured server: %+v", u)
	}

	c := result{Shape: "churn", Cycles: 500, MeasuredSeconds: 2, ServerMeasured: true, ServerCPUSeconds: 0.25, BaseRSS: 10 << 20, ServerRSS: 12 << 20, Connections: 5}
	c.derive()
	if c.CyclesPerS != 250 || c.CPUPerCycleUs != 500 || c.RSSPerConn != 0 {
		t.Errorf("churn: %+v", c)
	}

	i := result{Shape: "idle", Connections: 1024, BaseRSS: 20 << 20, ServerRSS: 36 << 20}
	i.derive()
	if i.RSSPerConn != 16<<10 {
		t.Errorf("idle: %d bytes per connection", i.RSSPerConn)
	}
}

func TestComparison(t *testing.T) {
	if q, ok := ratio(3, 0); ok || q != 0 {
		t.Errorf("ratio(3, 0) = %v, %v", q, ok)
	}
	if q, ok := ratio(3, 4); !ok || q != 0.75 {
		t.Errorf("ratio(3, 4) = %v, %v", q, ok)
	}
	a := result{Shape: "fanout", Target: "chat-service", Connections: 100, DeliveriesPerS: 2000, P99ms: 5, Missing: 3}
	b := result{Shape: "fanout", Target: "rabbitmq", Connections: 100, DeliveriesPerS: 1000, P99ms: 10}
	q := ratios(a, b)
	if q["deliveries/s"] != 2 || q["send→receive p99"] != 0.5 || q["connections"] != 1 {
		t.Errorf("ratios %v", q)
	}
	if _, ok := q["missing"]; ok {
		t.Error("a ratio against zero missing")
	}
	var buf bytes.Buffer
	printComparison(&buf, a, b)
	out := buf.String()
	for _, want := range []string{
		"| fanout | chat-service | rabbitmq | chat-service / rabbitmq |",
		"| deliveries/s | 2000 | 1000 | 2.00× better |",
		"| send→receive p99 (ms) | 5 | 10 | 0.50× better |",
		"| missing | 3 | 0 | – |",
		"| connections | 100 | 100 | 1.00× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "server CPU") {
		t.Errorf("rows without a value on either side are shown:\n%s", out)
	}
	buf.Reset()
	printComparison(&buf, result{Shape: "churn", Target: "x", P50ms: 4}, result{Shape: "churn", Target: "y", P50ms: 2})
	if !strings.Contains(buf.String(), "| connect→disconnected p50 (ms) | 4 | 2 | 2.00× worse |") {
		t.Errorf("churn rows:\n%s", buf.String())
	}
}

func TestStampsAndReceipts(t *testing.T) {
	body, at := stamp("s1", 5)
	got, ok := sentAt(body)
	if !ok || !got.Equal(at) {
		t.Fatalf("sentAt(%s) = %v, %v; want %v", body, got, ok, at)
	}
	id := receiptFor(at)
	got, ok = receiptTime([]byte(id))
	if !ok || !got.Equal(at) {
		t.Fatalf("receiptTime(%s) = %v, %v", id, got, ok)
	}
	for _, bad := range []string{"", "r", "sub-1", "bye", "r12x", "x123", "r99999999999999999999999"} {
		if _, ok := receiptTime([]byte(bad)); ok {
			t.Errorf("receiptTime(%q) accepted", bad)
		}
	}
	if _, ok := sentAt([]byte(`{"content":"hello"}`)); ok {
		t.Error("a body without a stamp has a send time")
	}
}

func TestFrameHelpers(t *testing.T) {
	msg := []byte("MESSAGE\ndestination:/topic/a\nreceipt-id:r42\ncontent-type:application/json\n\n{\"content\":\"t=1;x\"}\x00\n")
	if !oneFrame(msg) {
		t.Error("one frame with a trailing EOL")
	}
	if oneFrame(append(bytes.Clone(msg), []byte("RECEIPT\nreceipt-id:r1\n\n\x00")...)) {
		t.Error("two frames in one message taken for one")
	}
	if oneFrame([]byte("MESSAGE\n\npartial")) {
		t.Error("a frame without its NUL taken for complete")
	}
	if got := string(frameBody(msg)); got != `{"content":"t=1;x"}` {
		t.Errorf("body %q", got)
	}
	if got := string(headerValue(msg, "receipt-id")); got != "r42" {
		t.Errorf("receipt-id %q", got)
	}
	if got := headerValue(msg, "content"); got != nil {
		t.Errorf("a header named by the body's field: %q", got)
	}
	if got := string(headerValue([]byte("RECEIPT\r\nreceipt-id:r7\r\n\r\n\x00"), "receipt-id")); got != "r7" {
		t.Errorf("CRLF receipt-id %q", got)
	}
}

// TestWindowCounting: only messages sent inside the window count, as
// deliveries and as receipts; a problem document counts as rejected.
func TestWindowCounting(t *testing.T) {
	l := newLoad()
	now := time.Now()
	l.from.Store(now.Add(-time.Second).UnixNano())
	l.until.Store(now.Add(time.Second).UnixNano())
	in := stampAt("s", 0, now)
	early := stampAt("s", 0, now.Add(-2*time.Second))
	l.onMessage(nil, in)
	l.onMessage(nil, early)
	l.onReceipt([]byte(receiptFor(now)))
	l.onReceipt([]byte(receiptFor(now.Add(2 * time.Second))))
	l.onReceipt([]byte("sub-1"))
	problem := []byte("MESSAGE\ncontent-type:application/problem+json\nreceipt-id:" + receiptFor(now) + "\n\n{\"code\":\"rate_limited\"}\x00")
	l.onMessage(problem, frameBody(problem))
	if l.delivered.Load() != 1 || l.accepted.Load() != 1 || l.rejected.Load() != 1 {
		t.Errorf("delivered %d, accepted %d, rejected %d", l.delivered.Load(), l.accepted.Load(), l.rejected.Load())
	}
}

func TestSpread(t *testing.T) {
	if d := spread(0, 10, 2); d != 0 {
		t.Errorf("first sender delayed %s", d)
	}
	if d := spread(5, 10, 2); d != 250*time.Millisecond {
		t.Errorf("spread(5, 10, 2) = %s, want half of a 500 ms period", d)
	}
	if d := spread(15, 10, 2); d != 250*time.Millisecond {
		t.Errorf("spread wraps: %s", d)
	}
	if d := spread(3, 10, 0); d != 0 {
		t.Errorf("unpaced: %s", d)
	}
	if n := fanoutSenders(100, 100); n != 7 {
		t.Errorf("100 msg/s takes %d senders, want 7 at ≤ 15/s", n)
	}
	if n := fanoutSenders(100, 3); n != 3 {
		t.Errorf("senders beyond the users: %d", n)
	}
}

func TestFindBeamPID(t *testing.T) {
	proc := func(t *testing.T, procs map[string][2]string) string {
		dir := t.TempDir()
		for pid, p := range procs {
			if err := os.MkdirAll(filepath.Join(dir, pid), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, pid, "comm"), []byte(p[0]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, pid, "cmdline"), []byte(p[1]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	rabbit := [2]string{"beam.smp", "/usr/lib/erlang/erts/bin/beam.smp\x00--\x00-root\x00/usr/lib/erlang\x00-s\x00rabbit\x00boot"}
	other := [2]string{"beam.smp", "/usr/lib/erlang/erts/bin/beam.smp\x00--\x00-s\x00couch"}
	shell := [2]string{"sh", "/bin/sh\x00-c\x00rabbitmq-server"}

	dir := proc(t, map[string][2]string{"100": shell, "2971": rabbit, "3000": other, "self": shell})
	if pid, err := findBeamPID(dir); err != nil || pid != 2971 {
		t.Errorf("found %d, %v; want 2971", pid, err)
	}
	if _, err := findBeamPID(proc(t, map[string][2]string{"100": shell, "3000": other})); err == nil {
		t.Error("found a RabbitMQ where there is none")
	}
	if _, err := findBeamPID(proc(t, map[string][2]string{"10": rabbit, "11": rabbit})); err == nil || !strings.Contains(err.Error(), "2 RabbitMQ") {
		t.Errorf("two brokers: %v", err)
	}
}

func TestParseWSFrame(t *testing.T) {
	long := make([]byte, 300)
	for _, tc := range []struct {
		name    string
		in      []byte
		fin     bool
		op      byte
		payload int
		n       int
		err     bool
	}{
		{name: "empty", in: nil},
		{name: "header only", in: []byte{0x81}},
		{name: "small text", in: []byte{0x81, 2, 'h', 'i'}, fin: true, op: opText, payload: 2, n: 4},
		{name: "partial payload", in: []byte{0x81, 3, 'h', 'i'}},
		{name: "16-bit length", in: append([]byte{0x81, 126, 1, 44}, long...), fin: true, op: opText, payload: 300, n: 304},
		{name: "16-bit length partial", in: []byte{0x81, 126, 1}},
		{name: "first fragment", in: []byte{0x01, 1, 'a'}, op: opText, payload: 1, n: 3},
		{name: "ping", in: []byte{0x89, 0}, fin: true, op: opPing, n: 2},
		{name: "masked", in: []byte{0x81, 0x81, 0, 0, 0, 0, 'a'}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fin, op, payload, n, err := parseWSFrame(tc.in)
			if (err != nil) != tc.err || fin != tc.fin || op != tc.op || len(payload) != tc.payload || n != tc.n {
				t.Fatalf("got fin=%v op=%d payload=%d n=%d err=%v", fin, op, len(payload), n, err)
			}
		})
	}
}

// TestNextReassembles feeds fragments, a ping between them and a close.
func TestNextReassembles(t *testing.T) {
	c := &wsConn{fd: -1, nc: discardConn{}}
	in := []byte{0x01, 3, 'a', 'b', 'c', 0x89, 0, 0x80, 2, 'd', 'e', 0x81, 1, 'f', 0x88, 2, 0x03, 0xE9}
	c.rbuf, c.w = in, len(in)
	for _, want := range []string{"abcde", "f"} {
		msg, err := c.next()
		if err != nil || string(msg) != want {
			t.Fatalf("next = %q, %v; want %q", msg, err, want)
		}
	}
	if _, err := c.next(); !isNormalClose(err) {
		t.Fatalf("close 1001: %v", err)
	}
}

// discardConn takes the pong next answers.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := procstat.ParseMachineCPU("cpu  1000 10 500 9000 300 0 40 5 200 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil || got != 15550*time.Millisecond {
		t.Errorf("busy = %s, %v; want 15.55s (idle, iowait and guest left out)", got, err)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6 7"} {
		if _, err := procstat.ParseMachineCPU(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
