package httpserver

import (
	"context"
	"net/http"
	"regexp"
	"sync"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

// validRequestID accepts what proxies commonly send (UUIDs, hex, base64) and
// nothing that could break a log line.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// unmatchedRoute labels requests no route matched (404, 405, redirects).
const unmatchedRoute = "unmatched"

type infoKey struct{}

// requestInfo is created per request by the outermost middleware. Inner
// layers (the router, auth) fill in what only they know, and the access log
// reads it after the handler returns.
type requestInfo struct {
	id   string
	peer string // the trusted proxy the request came through, "" when direct

	mu      sync.Mutex // handlers may hand the request to other goroutines
	route   string
	userID  string
	logPath string // replaces the request path in the access log when set
}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(infoKey{}).(*requestInfo)
	return ri
}

func (ri *requestInfo) snapshot() (route, userID string) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.route, ri.userID
}

// RequestID is the id of the request ctx belongs to, or "" outside one.
func RequestID(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// SetUserID records the authenticated user for the access log line of the
// request ctx belongs to. The auth middleware calls it; outside a request it
// does nothing.
func SetUserID(ctx context.Context, userID string) {
	if ri := infoFrom(ctx); ri != nil {
		ri.mu.Lock()
		ri.userID = userID
		ri.mu.Unlock()
	}
}

// SetLogPath makes the access log line of the request ctx belongs to show
// path instead of the request's own, for paths that hold a secret (a
// SockJS session id). Outside a request it does nothing.
func SetLogPath(ctx context.Context, path string) {
	if ri := infoFrom(ctx); ri != nil {
		ri.mu.Lock()
		ri.logPath = path
		ri.mu.Unlock()
	}
}

// loggedPath is what the access log shows for r: its redacted URI, or the
// path a handler set with SetLogPath.
func loggedPath(r *http.Request) string {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.mu.Lock()
		p := ri.logPath
		ri.mu.Unlock()
		if p != "" {
			return p
		}
	}
	return RedactedURI(r.URL)
}

// requestID keeps a well-formed incoming X-Request-ID or makes one, echoes
// it on the response and puts it in the request context.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), infoKey{}, &requestInfo{id: id, route: unmatchedRoute})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// recordRoute is router middleware (it runs only for matched routes): it
// records the route's path template, the only route label metrics and logs use.
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri := infoFrom(r.Context()); ri != nil {
			tpl := unmatchedRoute
			if route := mux.CurrentRoute(r); route != nil {
				if t, err := route.GetPathTemplate(); err == nil {
					tpl = t
				} else if name := route.GetName(); name != "" {
					tpl = name
				}
			}
			ri.mu.Lock()
			ri.route = tpl
			ri.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}
