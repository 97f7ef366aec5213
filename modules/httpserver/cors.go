package httpserver

import (
	"net/http"
	"net/url"
	"strings"
)

const (
	corsAllowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	corsAllowHeaders  = "Authorization, Content-Type, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, Retry-After, WWW-Authenticate, Location"
	corsMaxAge        = "600"
)

// origins is server.cors.allowed_origins, normalised.
type origins struct {
	any    bool
	listed map[string]bool
}

func newOrigins(allowed []string) origins {
	o := origins{listed: make(map[string]bool, len(allowed))}
	for _, a := range allowed {
		a = normalizeOrigin(a)
		if a == "*" {
			o.any = true
		} else if a != "" {
			o.listed[a] = true
		}
	}
	return o
}

func normalizeOrigin(s string) string {
	return strings.TrimRight(strings.ToLower(strings.TrimSpace(s)), "/")
}

func (o origins) empty() bool { return !o.any && len(o.listed) == 0 }

// CORS applies server.cors.allowed_origins to browser requests:
//   - empty list: same origin only, no CORS headers at all (the middleware is
//     a no-op);
//   - "*": any origin, answered with Access-Control-Allow-Origin: * (no
//     credentials, which bearer tokens do not need);
//   - listed origins: echoed back with Vary: Origin and
//     Access-Control-Allow-Credentials: true.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an
// allowed origin is answered here with 204 and the allowed methods and
// headers (Authorization, Content-Type, X-Request-ID). Requests from other
// origins pass through untouched, so the browser blocks the response.
func CORS(allowed []string) func(http.Handler) http.Handler {
	o := newOrigins(allowed)
	return func(next http.Handler) http.Handler {
		if o.empty() {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			h := w.Header()
			h.Add("Vary", "Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			switch {
			case o.listed[normalizeOrigin(origin)]:
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
			case o.any:
				h.Set("Access-Control-Allow-Origin", "*")
			default:
				next.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			next.ServeHTTP(w, r)
		})
	}
}

// CheckOrigin returns the WebSocket origin check for
// server.cors.allowed_origins (gorilla's Upgrader.CheckOrigin): a request
// without Origin (not a browser) passes; so does one whose Origin host is the
// request's Host (same origin), any origin with "*", or a listed origin.
func CheckOrigin(allowed []string) func(r *http.Request) bool {
	o := newOrigins(allowed)
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		if o.any || o.listed[normalizeOrigin(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
}
