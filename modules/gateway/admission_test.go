package gateway_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/modules/auth/authtest"
	"github.com/chat-service/chat/modules/gateway"
)

func refusedWith(t *testing.T, resp *http.Response, err error, status int, code string) {
	t.Helper()
	if err == nil || resp == nil || resp.StatusCode != status {
		t.Fatalf("want %d: err %v resp %v", status, err, resp)
	}
	secs, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
	if perr != nil || secs < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	b, _ := io.ReadAll(resp.Body) // the dialer keeps the start of a refused handshake's body
	if got := problemCode(t, string(b)); got != code {
		t.Fatalf("code %q, want %q", got, code)
	}
}

// TestConnectionCap: past limits.max_connections open connections on the
// instance, upgrades get 503 with Retry-After until one closes.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{gw: func(o *gateway.Options) { o.Limits.MaxConnections = 2 }})
	var open []*websocket.Conn
	for range 2 {
		ws, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "bob")}}, nil, "v12.stomp")
		if err != nil {
			t.Fatal(err)
		}
		rawConnect(t, ws)
		open = append(open, ws)
	}
	_, resp, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "bob")}}, nil, "v12.stomp")
	refusedWith(t, resp, err, http.StatusServiceUnavailable, "unavailable")
	// SockJS sessions count too.
	c := &sockjsClient{t: t, base: s.http.URL + "/ws/000/over-the-cap-000001/", token: authtest.Token(t, "bob")}
	if status, body := c.post("xhr", nil); status != http.StatusServiceUnavailable || problemCode(t, body) != "unavailable" {
		t.Fatalf("sockjs past the cap: %d %s", status, body)
	}
	_ = open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, _, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "bob")}}, nil, "v12.stomp")
		if err == nil {
			_ = ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPreauthCapPerAddress: connections that have not sent CONNECT are
// limited per client address (429); CONNECT frees the slot.
func TestPreauthCapPerAddress(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{gw: func(o *gateway.Options) { o.Limits.MaxPreauthPerIP = 2 }})
	var idle []*websocket.Conn
	for range 2 {
		ws, _, err := s.dial(t, nil, nil, "v12.stomp") // never sends CONNECT
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, ws)
	}
	_, resp, err := s.dial(t, nil, nil, "v12.stomp")
	refusedWith(t, resp, err, http.StatusTooManyRequests, "too_many_connections")
	// One of them authenticates: its slot is free again.
	if f := rawConnect(t, idle[0], "Authorization", "Bearer "+authtest.Token(t, "bob")); f.Command != "CONNECTED" {
		t.Fatalf("CONNECT: %s %v", f.Command, f.Header)
	}
	ws, _, err := s.dial(t, nil, nil, "v12.stomp")
	if err != nil {
		t.Fatalf("after a CONNECT the address may open another: %v", err)
	}
	_ = ws.Close()
}

// TestConnectRate: past limits.connect_rate new connections per second,
// upgrades get 503 with Retry-After.
func TestConnectRate(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{gw: func(o *gateway.Options) { o.Limits.ConnectRate = 1 }})
	refused := 0
	for range 10 {
		ws, resp, err := s.dial(t, url.Values{"access_token": {authtest.Token(t, "bob")}}, nil, "v12.stomp")
		if err == nil {
			_ = ws.Close()
			continue
		}
		refusedWith(t, resp, err, http.StatusServiceUnavailable, "unavailable")
		refused++
	}
	if refused < 5 {
		t.Fatalf("only %d of 10 immediate connections refused at 1 per second", refused)
	}
	if v := counterValue(t, s, "chat_gateway_refused_connections_total"); v != float64(refused) {
		t.Fatalf("refused counter %v, want %d", v, refused)
	}
}
