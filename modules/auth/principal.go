package auth

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Principal is the authenticated caller.
type Principal struct {
	UserID    string    // the token's `sub`
	ExpiresAt time.Time // the token's `exp`; a long-lived connection ends its session then
}

// userIDPattern is the API's user id rule, applied to `sub`.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,128}$`)

// ValidUserID reports whether s is a well-formed user id.
func ValidUserID(s string) bool { return userIDPattern.MatchString(s) }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal Middleware (or a transport) stored in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// BearerToken returns the token of the request's `Authorization: Bearer
// <token>` header. It is false when the header is absent, repeated, uses
// another scheme or holds no token. A transport that falls back to other
// places (access_token) should do so only when the header is absent
// (r.Header.Get("Authorization") == ""): the first place that holds a
// token decides.
func BearerToken(r *http.Request) (string, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return "", false
	}
	return ParseBearer(values[0])
}

// ParseBearer parses an Authorization value ("Bearer <token>", scheme in any
// case), as found in an HTTP header or a STOMP CONNECT header.
func ParseBearer(value string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}
