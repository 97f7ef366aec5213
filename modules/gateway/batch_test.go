package gateway

import (
	"net"
	"testing"
	"time"
)

func TestBatchConn(t *testing.T) {
	t.Parallel()
	server, client := net.Pipe()
	defer client.Close()
	b := &batchConn{Conn: server, wait: 10 * time.Second}
	got := make(chan string, 4)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := client.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	// Outside a batch, writes go through (net.Pipe blocks until read).
	if _, err := b.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "a" {
		t.Fatalf("got %q", s)
	}
	// Inside one, they wait for flush and leave together.
	b.begin()
	for _, s := range []string{"b", "c", "d"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case s := <-got:
		t.Fatalf("%q written before the flush", s)
	case <-time.After(20 * time.Millisecond):
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "bcd" {
		t.Fatalf("got %q, want one write of bcd", s)
	}
	_ = server.Close()
	if _, ok := <-got; ok {
		t.Fatal("pipe still open")
	}
}
