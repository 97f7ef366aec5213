package auth

import (
	"context"
	"net/http"

	"github.com/chat-service/chat/modules/ident"
)

// Principal is the authenticated caller: ident's one definition, which the
// STOMP connections share.
type Principal = ident.Principal

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
	return ident.ParseBearer(values[0])
}
