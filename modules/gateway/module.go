// Package gateway is the real-time edge: STOMP over WebSocket at GET /ws
// (subprotocols v12.stomp, v11.stomp, v10.stomp) and over SockJS with base
// URL /ws when features.sockjs is on. It authenticates upgrades (401 before
// the upgrade for a bad token), checks origins against
// server.cors.allowed_origins and feeds each socket or SockJS session to
// the STOMP Hub (package stomp) through a small Transport. The Hub is also
// this instance's messaging.Hub: every relay event reaches it.
package gateway

import (
	"context"
	"log/slog"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/messaging"
	"github.com/chat-service/chat/modules/stomp"
)

// The hub recovers what the relay may lose (messaging.Resyncer).
var _ messaging.Resyncer = (*stomp.Hub)(nil)

// Module provides the *stomp.Hub (also as messaging.Hub) and the *Gateway,
// registers /ws (and SockJS under /ws/) on the shared router. The platform
// adds Gateway.Ready to /readyz. OnStop, the first stop hook of the application
// (it is registered last), drains: /readyz 503 for server.drain_delay, then
// an ERROR and a close for every connection spread over server.drain_spread,
// then it waits for the connections' loops; the HTTP server, the relay and
// the database stop after it.
var Module = fx.Module("gateway",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "gateway") }),
	fx.Provide(
		fx.Annotate(NewHub, fx.As(fx.Self()), fx.As(new(messaging.Hub))),
		NewGateway,
	),
	fx.Invoke(register),
)

// HubParams are what the Hub needs from the application.
type HubParams struct {
	fx.In
	Chat       *chat.Service
	Commands   *messaging.Commands
	Verifier   *auth.Verifier
	Limits     config.Limits
	Features   config.Features
	Recovery   config.Recovery
	Registerer prometheus.Registerer `optional:"true"`
	Log        *slog.Logger
}

// NewHub builds the STOMP hub from the application's chat service, command
// queue, verifier and limits.
func NewHub(p HubParams) (*stomp.Hub, error) {
	return stomp.NewHub(stomp.Options{
		Chat: p.Chat, Commands: p.Commands, Auth: StompAuthenticator(p.Verifier),
		Limits: p.Limits, Features: p.Features, Recovery: p.Recovery,
		Registerer: p.Registerer, Log: p.Log,
	})
}

// Params are what the Gateway needs from the application.
type Params struct {
	fx.In
	Hub        *stomp.Hub
	Verifier   *auth.Verifier
	Server     config.Server
	Limits     config.Limits
	Features   config.Features
	Registerer prometheus.Registerer `optional:"true"`
	Log        *slog.Logger
}

// NewGateway builds the Gateway.
func NewGateway(p Params) (*Gateway, error) {
	return New(Options{
		Hub: p.Hub, Auth: p.Verifier, Server: p.Server, Limits: p.Limits,
		Features: p.Features, Log: p.Log, Registerer: p.Registerer,
	})
}

func register(lc fx.Lifecycle, r *mux.Router, g *Gateway, srv config.Server) {
	g.Register(r)
	lc.Append(fx.Hook{
		OnStop: func(ctx context.Context) error { return g.Drain(ctx, srv.DrainDelay, srv.DrainSpread) },
	})
}
