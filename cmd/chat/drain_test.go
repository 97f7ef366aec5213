package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/platform/platformtest/bintest"
	"github.com/chat-service/chat/modules/stomp"
)

// TestDrainOnSIGTERM runs the binary with five STOMP connections and sends
// SIGTERM: /readyz turns 503 first and stays so for server.drain_delay
// while the connections live on; then each connection gets an ERROR
// "server shutting down", the ERRORs spread over server.drain_spread; then
// the process exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	const (
		delay  = 1500 * time.Millisecond
		spread = 1500 * time.Millisecond
		conns  = 5
	)
	addr := bintest.FreeAddr(t)
	p := bintest.Start(t, bintest.Build(t, "."), t.TempDir(), nil, "-set", "server.addr="+addr, "-set", "log.level=warn",
		"-set", "server.drain_delay="+delay.String(), "-set", "server.drain_spread="+spread.String())
	base := "http://" + addr
	p.WaitReady(t, base)

	res, err := http.Post(base+"/api/dev/token", "application/json", strings.NewReader(`{"userId":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	type closed struct {
		at      time.Time
		message string
	}
	results := make(chan closed, conns)
	var wg sync.WaitGroup
	for range conns {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?access_token="+url.QueryEscape(tok.Token), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		connect := frame.New(frame.CONNECT, "accept-version", "1.2", "host", "chat")
		if err := ws.WriteMessage(websocket.TextMessage, stomp.AppendFrame(nil, connect, stomp.V12)); err != nil {
			t.Fatal(err)
		}
		if f := nextFrame(t, ws); f == nil || f.Command != frame.CONNECTED {
			t.Fatalf("CONNECT: %v", f)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := nextFrame(t, ws)
			c := closed{at: time.Now()}
			if f != nil {
				c.message = f.Command + ": " + f.Header.Get("message")
			}
			results <- c
		}()
	}

	sigterm := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var unready time.Time
	for unready.IsZero() && time.Since(sigterm) < delay {
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusServiceUnavailable {
				unready = time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if unready.IsZero() {
		t.Fatalf("/readyz did not turn 503 within drain_delay of SIGTERM\n%s", p.Output())
	}
	wg.Wait()
	close(results)
	var first, last time.Time
	for r := range results {
		if r.message != "ERROR: server shutting down" {
			t.Errorf("a connection ended with %q, want an ERROR \"server shutting down\"", r.message)
		}
		if first.IsZero() || r.at.Before(first) {
			first = r.at
		}
		if r.at.After(last) {
			last = r.at
		}
	}
	if !unready.Before(first) {
		t.Errorf("the first ERROR (%s after SIGTERM) came before /readyz turned 503 (%s)", first.Sub(sigterm), unready.Sub(sigterm))
	}
	if got := first.Sub(sigterm); got < delay*8/10 {
		t.Errorf("connections were closed %s after SIGTERM, before drain_delay %s", got, delay)
	}
	if got := last.Sub(first); got < spread/3 {
		t.Errorf("the ERRORs came within %s, not spread over drain_spread %s", got, spread)
	}
	select {
	case err := <-p.Exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.Output())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running after the drain\n%s", p.Output())
	}
}

// nextFrame reads the next non-heart-beat frame, or nil when the socket ends.
func nextFrame(t *testing.T, ws *websocket.Conn) *frame.Frame {
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return nil
		}
		if string(b) == "\n" {
			continue
		}
		d := stomp.NewDecoder(1 << 20)
		d.SetVersion(stomp.V12)
		d.Write(b)
		f, err := d.Next()
		if err != nil || f == nil {
			t.Errorf("frame %q: %v", b, err)
			return nil
		}
		return f
	}
}
