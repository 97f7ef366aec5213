package httpserver

import (
	"github.com/chat-service/chat/modules/metrics"

	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are labelled by route template, never by raw path.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_http_request_duration_seconds",
			Help:    "HTTP request duration by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = metrics.Register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	m.duration, err = metrics.Register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// quietRoutes are probed often; their access log lines go to debug.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe records metrics and writes one access log line per request. It
// runs in a defer so that requests aborted by a panic are still counted.
func observe(log *slog.Logger, m *httpMetrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := wrapRecorder(w)
			defer func() {
				d := time.Since(start)
				status := rec.statusCode()
				route, userID, peer := unmatchedRoute, "", ""
				if ri := infoFrom(r.Context()); ri != nil {
					route, userID = ri.snapshot()
					peer = ri.peer
				}
				method := methodLabel(r.Method)
				m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
				m.duration.WithLabelValues(method, route).Observe(d.Seconds())

				level := slog.LevelInfo
				if quietRoutes[route] {
					level = slog.LevelDebug
				}
				attrs := []slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", loggedPath(r)),
					slog.String("route", route),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", d),
					slog.String("request_id", RequestID(r.Context())),
					slog.String("remote_addr", r.RemoteAddr),
				}
				if peer != "" {
					attrs = append(attrs, slog.String("peer_addr", peer))
				}
				if userID != "" {
					attrs = append(attrs, slog.String("user_id", userID))
				}
				log.LogAttrs(r.Context(), level, "http request", attrs...)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// redacted replaces secret query values in logs.
const redacted = "REDACTED"

// RedactedURI is u's escaped path and query with access_token and every
// other token-like parameter replaced by REDACTED: by name (access_token,
// anything with token, secret, password, key, auth or signature in it) or
// by value (a JWT, a Bearer credential). Use it whenever a URL is logged.
func RedactedURI(u *url.URL) string {
	path := u.EscapedPath()
	if u.RawQuery == "" {
		return path
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, part := range parts {
		rawKey, rawVal, hasVal := strings.Cut(part, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			key = rawKey
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			val = rawVal
		}
		if sensitiveKey(key) || (hasVal && tokenLike(val)) {
			parts[i] = rawKey + "=" + redacted
		}
	}
	return path + "?" + strings.Join(parts, "&")
}

func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"token", "secret", "password", "passwd", "key", "auth", "signature", "sig", "jwt", "credential", "code"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// tokenLike spots credentials whatever the parameter is called.
func tokenLike(v string) bool {
	if len(v) > 6 && strings.EqualFold(v[:6], "bearer") {
		return true
	}
	// A JWS compact serialisation: three base64url parts, the header a JSON object ("eyJ").
	return strings.HasPrefix(v, "eyJ") && strings.Count(v, ".") == 2
}

// recorder remembers status and size, and keeps the optional interfaces
// WebSocket (Hijacker) and SockJS (Flusher) need; Unwrap serves
// http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

// wrapRecorder reuses w when it already is a recorder.
func wrapRecorder(w http.ResponseWriter) *recorder {
	if rec, ok := w.(*recorder); ok {
		return rec
	}
	return &recorder{ResponseWriter: w}
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusOK, true
	}
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rec.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("http.Hijacker not supported by the response writer")
	}
	conn, rw, err := h.Hijack()
	if err == nil && !rec.wroteHeader {
		rec.status, rec.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return conn, rw, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// statusCode is what the client got: 200 when the handler wrote nothing.
func (rec *recorder) statusCode() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}
