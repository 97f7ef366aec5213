package main

import (
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
