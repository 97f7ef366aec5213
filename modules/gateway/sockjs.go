package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"

	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
	"github.com/chat-service/chat/modules/stomp"
)

// SockJS at base URL /ws. The HTTP transports (xhr-streaming, xhr-polling
// and the others sockjs-client may pick) are igm/sockjs-go's, behind a
// wrapper that authenticates access_token, binds each session to its user,
// bounds request bodies and puts a deadline on every response write. The
// websocket transport (/ws/{server}/{session}/websocket) is served here
// instead, so that it has the same read limit, deadlines and origin check
// as /ws.
//
// A SockJS session id is all that ties the HTTP requests of one session
// together, so it is treated as a credential of its user: every request
// naming a session must carry access_token (sockjs-client copies the base
// URL's query onto every transport URL) for the user who opened it, or is
// refused before sockjs-go sees it; ids shorter than 16 characters are
// refused; the id never reaches the access log.

// sockjsSessionPath matches /ws/{server}/{session}/{transport}.
var sockjsSessionPath = regexp.MustCompile(`^/ws/([^/.]+)/([^/.]+)/([a-z_]+)$`)

// sockjsIframePath is sockjs-go's iframe page, which loads the SockJS
// client from a CDN: not served (only iframe-based fallbacks for browsers
// without CORS would use it).
var sockjsIframePath = regexp.MustCompile(`^/ws/iframe[0-9-.a-z_]*\.html$`)

// Lengths a SockJS session id may have: long enough not to be guessed.
const (
	minSockJSSessionID = 16
	maxSockJSSessionID = 128
)

// sockjsBodyTimeout bounds reading an xhr_send body.
const sockjsBodyTimeout = 10 * time.Second

func (g *Gateway) newSockJS() http.Handler {
	opts := sockjs.DefaultOptions
	opts.Websocket = true // advertised in /info; served by serveSockJSWebsocket
	opts.HeartbeatDelay = g.o.SockJSHeartbeat
	opts.DisconnectDelay = g.o.SockJSDisconnect
	opts.JSessionID = nil
	opts.SockJSURL = "" // the iframe page is not served (sockjsIframePath)
	// CORS is the httpserver middleware's job (server.cors.allowed_origins);
	// sockjs-go adds no headers of its own.
	opts.CheckOrigin = func(*http.Request) bool { return false }
	h := sockjs.NewHandler("/ws", opts, g.serveSockJSSession)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.closing.Load() {
			problem.Error(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
			return
		}
		if m := sockjsSessionPath.FindStringSubmatch(r.URL.Path); m != nil {
			httpserver.SetLogPath(r.Context(), "/ws/"+m[1]+"/{session}/"+m[3])
			g.serveSockJSRequest(h, w, r, m[2], m[3])
			return
		}
		if sockjsIframePath.MatchString(r.URL.Path) {
			problem.Error(w, http.StatusNotFound, "not_found", "no such route")
			return
		}
		// /ws/info and the welcome page: a token, when given, is checked
		// so that a bad one is refused with 401 before any session exists.
		if _, ok := g.upgradePrincipal(w, r, false); !ok {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveSockJSRequest serves one request of session sid: kind is the
// transport segment (xhr, xhr_send, websocket, ...).
func (g *Gateway) serveSockJSRequest(h http.Handler, w http.ResponseWriter, r *http.Request, sid, kind string) {
	if r.Method == http.MethodOptions { // sockjs-go's CORS answer; it touches no session
		h.ServeHTTP(w, r)
		return
	}
	if kind == "websocket" && !g.checkOrigin(r) {
		problem.Error(w, http.StatusForbidden, "origin_not_allowed", "the Origin is not in server.cors.allowed_origins")
		return
	}
	principal, ok := g.upgradePrincipal(w, r, false)
	if !ok {
		return
	}
	if principal == nil {
		unauthorized(w, "SockJS requests need the token in access_token on the SockJS URL")
		return
	}
	if len(sid) < minSockJSSessionID || len(sid) > maxSockJSSessionID {
		problem.Error(w, http.StatusBadRequest, "invalid_session_id",
			"a SockJS session id must be 16 to 128 characters (sockjs-client: new SockJS(url, null, {sessionId: 16}))")
		return
	}
	switch kind {
	case "websocket":
		g.serveSockJSWebsocket(w, r, principal)
	case "xhr_send", "jsonp_send":
		b := g.sjs.lookup(sid)
		if b == nil {
			problem.Error(w, http.StatusNotFound, "not_found", "no such SockJS session")
			return
		}
		if b.user != principal.UserID {
			g.log.Info("sockjs request refused: session of another user", "remote_addr", r.RemoteAddr)
			problem.Error(w, http.StatusForbidden, "forbidden", "the SockJS session belongs to another user")
			return
		}
		body, ok := readBody(w, r, 2*g.o.readLimit(), sockjsBodyTimeout) // JSON-quoted frames
		if !ok {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	case "xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp":
		b, refused := g.sjs.claim(sid, principal.UserID, func() (*ticket, *refusal) { return g.adm.take(clientIP(r.RemoteAddr)) })
		if refused != nil {
			refused.write(w)
			return
		}
		if b == nil {
			g.log.Info("sockjs request refused: session of another user", "remote_addr", r.RemoteAddr)
			problem.Error(w, http.StatusForbidden, "forbidden", "the SockJS session belongs to another user")
			return
		}
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), wait: g.o.WriteWait, b: b}
		if kind == "xhr" {
			servePoll(h, dw, r)
			return
		}
		h.ServeHTTP(dw, r)
	default:
		h.ServeHTTP(w, r) // sockjs-go answers 404 or 405
	}
}

// anotherReceiver is sockjs-go's answer to a receiving request while the
// session still has one attached.
const anotherReceiver = "c[2010,\"Another connection still open\"]\n"

// servePoll serves an xhr-polling request, working around a race in
// sockjs-go: a poll that ends (it carried a frame) detaches from its
// session on another goroutine, and the client's next poll, when it comes
// first, is answered "Another connection still open", which ends the
// session for the client. The poll's short answer is buffered; when it is
// that refusal, the poll is tried again a few times before it is sent.
func servePoll(h http.Handler, w http.ResponseWriter, r *http.Request) {
	for attempt := 0; ; attempt++ {
		pb := &pollBuffer{header: w.Header()}
		h.ServeHTTP(pb, r)
		if pb.buf.String() == anotherReceiver && attempt < 40 && r.Context().Err() == nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if pb.status != 0 {
			w.WriteHeader(pb.status)
		}
		_, _ = w.Write(pb.buf.Bytes()) // a client gone meanwhile is the session's concern (it times out)
		return
	}
}

// pollBuffer holds an xhr-polling response (one frame batch) until the
// handler returns.
type pollBuffer struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (p *pollBuffer) Header() http.Header { return p.header }

func (p *pollBuffer) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *pollBuffer) Write(b []byte) (int, error) { return p.buf.Write(b) }

func (p *pollBuffer) Flush() {}

// readBody reads a request body of at most limit bytes within timeout
// and answers the client itself when it cannot (413, 400, 408).
func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, bool) {
	body, err := httpserver.ReadBody(w, r, limit, timeout)
	switch {
	case err == nil:
		return body, true
	case httpserver.IsBodyTooLarge(err):
		problem.Error(w, http.StatusRequestEntityTooLarge, "payload_too_large", "SockJS message over the frame limit")
	case errors.Is(err, os.ErrDeadlineExceeded):
		problem.Error(w, http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time")
	default:
		problem.Error(w, http.StatusBadRequest, "invalid_json", "the body could not be read")
	}
	return nil, false
}

// deadlineWriter puts a write deadline on every write of a SockJS HTTP
// response, so that a client that stops reading an xhr-streaming response
// cannot block the connection's writer for ever; and it counts what the
// response carries off the session's backlog.
type deadlineWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	wait time.Duration
	b    *sockjsBinding
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.wait)) // unsupported only by test recorders; then writes have no deadline
	n, err := d.ResponseWriter.Write(p)
	d.b.drained(n)
	return n, err
}

func (d *deadlineWriter) Flush() {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.wait)) // as in Write
	_ = d.rc.Flush()                                  // a failed flush shows up as a failed write next
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// sockjsSessions binds SockJS session ids to their users.
type sockjsSessions struct {
	linger time.Duration // how long an unused binding outlives its session

	mu sync.Mutex
	m  map[string]*sockjsBinding
}

// sockjsBinding is one session id's owner and what its transport holds.
type sockjsBinding struct {
	user    string
	refs    int     // STOMP connections running on the session (guarded by sockjsSessions.mu)
	pending *ticket // admission taken by the request that creates the session (guarded likewise)
	backlog atomic.Int64
}

func newSockJSSessions(linger time.Duration) *sockjsSessions {
	return &sockjsSessions{linger: linger, m: make(map[string]*sockjsBinding)}
}

func (s *sockjsSessions) lookup(sid string) *sockjsBinding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[sid]
}

// claim binds sid to user unless it is bound to another user (nil, nil).
// When no connection runs on the session yet, the request is about to
// create it: admit is asked for a ticket first, which the session's
// connection takes over.
func (s *sockjsSessions) claim(sid, user string, admit func() (*ticket, *refusal)) (*sockjsBinding, *refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[sid]
	if b != nil && b.user != user {
		return nil, nil
	}
	if b != nil && (b.refs > 0 || b.pending != nil) {
		return b, nil
	}
	t, refused := admit()
	if refused != nil {
		return nil, refused
	}
	if b == nil {
		b = &sockjsBinding{user: user}
		s.m[sid] = b
	}
	b.pending = t
	s.expireLater(sid, b)
	return b, nil
}

// start registers the connection of a session that claim created; it
// returns the binding and the admission ticket, or nil when the session
// is not bound to user.
func (s *sockjsSessions) start(sid, user string) (*sockjsBinding, *ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[sid]
	if b == nil || b.user != user {
		return nil, nil
	}
	b.refs++
	t := b.pending
	b.pending = nil
	b.backlog.Store(0)
	return b, t
}

// stop unregisters a connection started on b.
func (s *sockjsSessions) stop(sid string, b *sockjsBinding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.refs--
	s.expireLater(sid, b)
}

// expireLater forgets b once nothing has used it for linger: by then
// sockjs-go has dropped the session too. Called with s.mu held.
func (s *sockjsSessions) expireLater(sid string, b *sockjsBinding) {
	time.AfterFunc(s.linger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.m[sid] != b || b.refs > 0 {
			return
		}
		if b.pending != nil { // admitted, but no session came of it
			b.pending.done()
			b.pending = nil
		}
		delete(s.m, sid)
	})
}

// drained counts n bytes a receiving response carried to the client.
func (b *sockjsBinding) drained(n int) {
	if b == nil || n <= 0 {
		return
	}
	for {
		old := b.backlog.Load()
		if old <= 0 || b.backlog.CompareAndSwap(old, max(0, old-int64(n))) {
			return
		}
	}
}

// serveSockJSSession runs a STOMP connection over an HTTP-transport SockJS
// session, which serveSockJSRequest bound to the user of its access_token.
func (g *Gateway) serveSockJSSession(s sockjs.Session) {
	req := s.Request()
	p, err := g.o.Auth.Verify(req.URL.Query().Get("access_token"))
	if err != nil { // checked on the request already; it expired in between
		_ = s.Close(4008, "unauthorized") // the session ends either way
		return
	}
	b, t := g.sjs.start(s.ID(), p.UserID)
	if b == nil { // not created through serveSockJSRequest; cannot happen
		_ = s.Close(4003, "forbidden")
		return
	}
	defer g.sjs.stop(s.ID(), b)
	if t == nil {
		var refused *refusal
		if t, refused = g.adm.take(clientIP(req.RemoteAddr)); refused != nil {
			_ = s.Close(sockjsCode(stomp.CloseTryAgainLater), refused.code)
			return
		}
	}
	defer t.done()
	tr := &sockjsTransport{s: s, b: b}
	_ = g.o.Hub.Serve(context.Background(), tr, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the session
		Principal:   &p,
		Transport:   "sockjs-" + receiverName(s.ReceiverType()),
		RemoteAddr:  req.RemoteAddr,
		OnConnected: t.authenticated,
	})
}

func receiverName(t sockjs.ReceiverType) string {
	switch t {
	case sockjs.ReceiverTypeXHR:
		return "xhr"
	case sockjs.ReceiverTypeXHRStreaming:
		return "xhr_streaming"
	case sockjs.ReceiverTypeEventSource:
		return "eventsource"
	case sockjs.ReceiverTypeHtmlFile:
		return "htmlfile"
	case sockjs.ReceiverTypeJSONP:
		return "jsonp"
	}
	return "http"
}

// sockjsCode maps a WebSocket close code to a SockJS one: SockJS clients
// accept 1000 and 3000-4999, so 1xxx becomes 4xxx.
func sockjsCode(code int) uint32 {
	if code == stomp.CloseNormal || code >= 3000 {
		return uint32(code)
	}
	return uint32(code + 3000)
}

// sockjsTransport carries STOMP over an igm/sockjs-go session. sockjs-go
// buffers what Send is given until a receiving request takes it, without
// bound; the binding counts those bytes (Backlog) until a response carries
// them off, so that the STOMP writer can treat a client that stops polling
// as the slow consumer it is.
type sockjsTransport struct {
	s sockjs.Session
	b *sockjsBinding
}

func (t *sockjsTransport) Read() ([]byte, error) {
	msg, err := t.s.RecvCtx(context.Background())
	if err != nil {
		return nil, err
	}
	return []byte(msg), nil
}

func (t *sockjsTransport) Write(p []byte) error {
	t.b.backlog.Add(int64(len(p)))
	return t.s.Send(string(p))
}

// Backlog implements stomp.Backlogger.
func (t *sockjsTransport) Backlog() int { return int(t.b.backlog.Load()) }

func (t *sockjsTransport) Ping() error { return nil } // sockjs-go sends its own "h" frames

func (t *sockjsTransport) Close(code int, reason string) error {
	err := t.s.Close(sockjsCode(code), reason)
	if errors.Is(err, sockjs.ErrSessionNotOpen) {
		return nil
	}
	return err
}

// serveSockJSWebsocket is the SockJS websocket transport: "o" on open,
// a["frame"] per message, "h" as keep-alive, c[code,"reason"] on close; the
// client sends JSON arrays of strings.
func (g *Gateway) serveSockJSWebsocket(w http.ResponseWriter, r *http.Request, principal *stomp.Principal) {
	t, refused := g.adm.take(clientIP(r.RemoteAddr))
	if refused != nil {
		refused.write(w)
		return
	}
	defer t.done()
	up := *g.upgrader
	up.Subprotocols = nil
	hj := &batchHijacker{ResponseWriter: w, wait: g.o.WriteWait}
	conn, err := up.Upgrade(hj, r, nil)
	if err != nil {
		g.log.Debug("sockjs websocket upgrade failed", "error", err) // Upgrade has answered the client
		return
	}
	tr := &sockjsWS{ws: newWSTransport(conn, hj.conn, g.o)}
	tr.ws.conn.SetReadLimit(2 * g.o.readLimit()) // JSON quoting
	if err := tr.ws.Write([]byte("o")); err != nil {
		_ = conn.Close() // the client is gone before the session opened
		return
	}
	_ = g.o.Hub.Serve(context.WithoutCancel(r.Context()), tr, stomp.ConnOptions{ // ErrShuttingDown: Serve closed the socket
		Principal:   principal,
		PingPeriod:  g.o.SockJSHeartbeat,
		Transport:   "sockjs-websocket",
		RemoteAddr:  r.RemoteAddr,
		OnConnected: t.authenticated,
	})
}

// sockjsWS is SockJS framing over a wsTransport.
type sockjsWS struct {
	ws   *wsTransport
	once sync.Once
}

func (t *sockjsWS) Read() ([]byte, error) {
	for {
		b, err := t.ws.Read()
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		var msgs []string
		if b[0] == '[' {
			err = json.Unmarshal(b, &msgs)
		} else {
			var one string
			err = json.Unmarshal(b, &one)
			msgs = []string{one}
		}
		if err != nil {
			return nil, errors.New("sockjs: message is not a JSON array of strings")
		}
		var out []byte
		for _, m := range msgs {
			out = append(out, m...)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
}

func (t *sockjsWS) Write(p []byte) error {
	q, err := json.Marshal([]string{string(p)})
	if err != nil {
		return err
	}
	return t.ws.Write(append([]byte{'a'}, q...))
}

func (t *sockjsWS) BeginBatch()     { t.ws.BeginBatch() }
func (t *sockjsWS) EndBatch() error { return t.ws.EndBatch() }

func (t *sockjsWS) Ping() error { return t.ws.Write([]byte("h")) }

func (t *sockjsWS) Close(code int, reason string) error {
	t.once.Do(func() {
		reasonJSON, _ := json.Marshal(reason)                                                               // a string always marshals
		_ = t.ws.Write([]byte("c[" + strconv.Itoa(int(sockjsCode(code))) + "," + string(reasonJSON) + "]")) // best effort: the peer may be gone
	})
	return t.ws.Close(websocket.CloseNormalClosure, "")
}
