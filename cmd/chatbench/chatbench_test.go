package main

import (
	"net"
	"os"
	"testing"
	"time"
)

// TestScenariosSmall runs each scenario at a tiny scale against the
// built-in server in this process.
func TestScenariosSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	srv, err := startBuiltin("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() }) // the test is over
	base := options{url: srv.URL, pid: os.Getpid(), duration: time.Second, warmup: 200 * time.Millisecond, pad: 10, concurrency: 8, settle: 100 * time.Millisecond}

	t.Run("fanout", func(t *testing.T) {
		o := base
		o.conns, o.users, o.rate = 20, 5, 20
		r, err := fanout(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent == 0 || r.Delivered != r.Expected || r.Errors != 0 || r.P99ms <= 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("direct", func(t *testing.T) {
		o := base
		o.conns, o.rate = 10, 5
		r, err := direct(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sessions != 5 || r.Sent == 0 || r.Delivered != r.Expected || r.Errors != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("idle", func(t *testing.T) {
		o := base
		o.conns = 20
		r, err := idle(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Connections != 20 || r.ServerRSS == 0 || r.Errors != 0 {
			t.Fatalf("%+v", r)
		}
	})
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "10.0.0.1:1": false, "example.com:80": false} {
		if err := loopbackOnly(addr); (err == nil) != ok {
			t.Errorf("loopbackOnly(%q) = %v", addr, err)
		}
	}
	if err := checkLoopbackURL("http://192.168.1.1:8080"); err == nil {
		t.Error("a LAN URL was accepted")
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
