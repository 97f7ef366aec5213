// Package rest serves /api/chat/*: it decodes requests strictly, calls the
// chat service and writes JSON or RFC 9457 problem documents. Rules live in
// modules/chat; this package only translates.
package rest

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/chat"
)

// Module registers the REST routes on the shared router.
var Module = fx.Module("rest",
	fx.Provide(New),
	fx.Invoke(func(r *mux.Router, h *Handlers, v *auth.Verifier) { h.Register(r, v) }),
)

// Authenticator is the middleware that puts the caller's principal into the
// request context (modules/auth's Verifier in production).
type Authenticator interface {
	Middleware(next http.Handler) http.Handler
}

// Params are what the handlers need.
type Params struct {
	fx.In
	Chat   *chat.Service
	Limits config.Limits
	Log    *slog.Logger

	Presence Presence `optional:"true"` // nil when features.presence is off: no route
}

// Handlers serves the chat REST API.
type Handlers struct {
	chat    *chat.Service
	maxBody int64
	log     *slog.Logger

	presence Presence // presence.go; nil: off
}

// New builds the handlers.
func New(p Params) (*Handlers, error) {
	h := &Handlers{chat: p.Chat, maxBody: p.Limits.MaxBodyBytes(), log: p.Log.With("module", "rest")}
	h.presence = p.Presence
	return h, nil
}

// Register mounts every /api/chat route behind auth. Routes are flat on the
// router rather than on a PathPrefix subrouter: mux loses the 405 of a
// wrong method inside subrouters and answers 404.
func (h *Handlers) Register(r *mux.Router, auth Authenticator) {
	route := func(method, path string, fn http.HandlerFunc) {
		r.Handle("/api/chat"+path, auth.Middleware(fn)).Methods(method)
	}
	if h.presence != nil { // features.presence (presence.go)
		route(http.MethodGet, "/presence", h.presenceOf)
	}
	route(http.MethodPost, "/sessions", h.createSession)
	route(http.MethodGet, "/sessions", h.listSessions)
	route(http.MethodGet, "/sessions/{id}", h.getSession)
	route(http.MethodGet, "/sessions/{id}/messages", h.history)
	route(http.MethodPost, "/sessions/{id}/messages", h.send)
	route(http.MethodPost, "/sessions/{id}/read", h.markRead)
	route(http.MethodGet, "/unread", h.unread)
	h.registerChanges(route) // membership, edits and deletes (changes.go)
}
