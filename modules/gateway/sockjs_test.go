package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth/authtest"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/stomp"
)

func connectFrame(headers ...string) string {
	f := frame.New(frame.CONNECT, append([]string{"accept-version", "1.2", "host", "chat"}, headers...)...)
	return string(stomp.AppendFrame(nil, f, stomp.V12))
}

func sockjsArray(t *testing.T, msgs ...string) []byte {
	t.Helper()
	b, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeSockJS parses an "a[...]" SockJS frame into its messages.
func decodeSockJS(t *testing.T, b string) []string {
	t.Helper()
	if !strings.HasPrefix(b, "a") {
		t.Fatalf("not a message frame: %q", b)
	}
	var msgs []string
	if err := json.Unmarshal([]byte(b[1:]), &msgs); err != nil {
		t.Fatalf("sockjs frame %q: %v", b, err)
	}
	return msgs
}

func TestSockJSInfo(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	resp, err := http.Get(s.http.URL + "/ws/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Websocket bool `json:"websocket"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 || !info.Websocket {
		t.Fatalf("info: %d %+v %v", resp.StatusCode, info, err)
	}
}

func TestSockJSOffWithoutFeature(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{gw: func(o *gateway.Options) { o.Features.SockJS = false }})
	r := mux.NewRouter()
	s.gw.Register(r) // a second registration shows the routes the flag leaves out
	if m := (&mux.RouteMatch{}); r.Match(httpReq(t, "/ws/info"), m) && m.MatchErr == nil {
		t.Fatal("/ws/info is routed with features.sockjs off")
	}
}

func httpReq(t *testing.T, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSockJSWebsocket(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	sid := s.b.CreateSession("alice", "bob")
	u := s.wsURL("/ws/123/abcdef0123456789/websocket?access_token=" + url.QueryEscape(authtest.Token(t, "bob")))
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != "o" {
		t.Fatalf("open frame %q %v", b, err)
	}
	// Two frames in one SockJS message, the second split over two strings.
	sub := "SUBSCRIBE\nid:1\ndestination:" + stomp.TopicSessionPrefix + sid + "\nreceipt:r\n\n\x00"
	if err := ws.WriteMessage(websocket.TextMessage, sockjsArray(t, connectFrame(), sub[:10], sub[10:])); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) == "h" {
			continue
		}
		got = append(got, decodeSockJS(t, string(b))...)
	}
	if !strings.HasPrefix(got[0], "CONNECTED\n") || !strings.HasPrefix(got[1], "RECEIPT\nreceipt-id:r\n") {
		t.Fatalf("got %q", got)
	}
	s.b.Publish(sid, "alice", "over sockjs")
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeSockJS(t, string(b)); !strings.HasPrefix(m[0], "MESSAGE\n") || !strings.Contains(m[0], "over sockjs") {
		t.Fatalf("got %q", m)
	}
}

func TestSockJSRefusesBadToken(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	for _, path := range []string{"/ws/info?access_token=bad", "/ws/1/s/xhr?access_token=bad"} {
		resp, err := http.Post(s.http.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	_, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/1/s/websocket?access_token=bad"), nil)
	if err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("websocket: %v %v", err, resp)
	}
}

func TestSockJSWebsocketOrigin(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{gw: func(o *gateway.Options) { o.Server = config.Server{} }})
	_, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/1/s/websocket"), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", err, resp)
	}
}

func TestSockJSXHRPolling(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	sid := s.b.CreateSession("alice", "bob")
	base := s.http.URL + "/ws/000/polling-session-0001/"
	q := "?access_token=" + url.QueryEscape(authtest.Token(t, "bob"))
	poll := func() string {
		t.Helper()
		resp, err := http.Post(base+"xhr"+q, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	send := func(msgs ...string) {
		t.Helper()
		resp, err := http.Post(base+"xhr_send"+q, "text/plain", strings.NewReader(string(sockjsArray(t, msgs...))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("xhr_send: %d", resp.StatusCode)
		}
	}
	if got := poll(); got != "o" {
		t.Fatalf("open %q", got)
	}
	send(connectFrame(), "SUBSCRIBE\nid:1\ndestination:"+stomp.TopicSessionPrefix+sid+"\nreceipt:r\n\n\x00")
	var got []string
	for len(got) < 2 {
		got = append(got, decodeSockJS(t, poll())...)
	}
	if !strings.HasPrefix(got[0], "CONNECTED\n") || !strings.Contains(got[0], "user-name:bob") || !strings.HasPrefix(got[1], "RECEIPT\n") {
		t.Fatalf("got %q", got)
	}
	s.b.Publish(sid, "alice", "over xhr")
	if m := decodeSockJS(t, poll()); !strings.Contains(m[0], "over xhr") {
		t.Fatalf("got %q", m)
	}
}

func TestSockJSXHRStreaming(t *testing.T) {
	t.Parallel()
	s := newServer(t, tweak{})
	sid := s.b.CreateSession("alice", "bob")
	base := s.http.URL + "/ws/000/streaming-session-01/"
	q := "?access_token=" + url.QueryEscape(authtest.Token(t, "bob"))
	resp, err := http.Post(base+"xhr_streaming"+q, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	next := func() string {
		t.Helper()
		for {
			l, err := lines.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			l = strings.TrimSpace(l)
			if l != "" && strings.Trim(l, "h") != "" || l == "o" {
				return l
			}
		}
	}
	if got := next(); got != "o" {
		t.Fatalf("open %q", got)
	}
	body := sockjsArray(t, connectFrame(), "SUBSCRIBE\nid:1\ndestination:"+stomp.TopicSessionPrefix+sid+"\nreceipt:r\n\n\x00")
	sr, err := http.Post(base+"xhr_send"+q, "text/plain", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	sr.Body.Close()
	var got []string
	for len(got) < 2 {
		got = append(got, decodeSockJS(t, next())...)
	}
	if !strings.HasPrefix(got[0], "CONNECTED\n") || !strings.HasPrefix(got[1], "RECEIPT\n") {
		t.Fatalf("got %q", got)
	}
	s.b.Publish(sid, "alice", "streamed")
	if m := decodeSockJS(t, next()); !strings.Contains(m[0], "streamed") {
		t.Fatalf("got %q", m)
	}
}
