package auth

import (
	"net/http"

	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
)

// Middleware guards REST routes: it requires `Authorization: Bearer <jwt>`,
// verifies it and puts the Principal in the request context (FromContext).
// A missing, malformed or invalid token gets a 401 problem `unauthorized`
// with WWW-Authenticate: Bearer. Use it on a subrouter:
//
//	api := r.PathPrefix("/api/chat").Subrouter()
//	api.Use(verifier.Middleware)
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := BearerToken(r)
		if !ok {
			detail := "missing Authorization: Bearer <token> header"
			if r.Header.Get("Authorization") != "" {
				detail = "malformed Authorization header; want Bearer <token>"
			}
			problem.Error(w, http.StatusUnauthorized, "unauthorized", detail)
			return
		}
		p, err := v.Verify(token)
		if err != nil {
			problem.Error(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		httpserver.SetUserID(r.Context(), p.UserID)
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
