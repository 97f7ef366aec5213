package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"time"

	"github.com/igm/sockjs-go/v3/sockjs"

	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
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
