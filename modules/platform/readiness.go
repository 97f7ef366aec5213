package platform

import (
	"go.uber.org/fx"

	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/messaging"
	"github.com/chat-service/chat/modules/store"
)

// readiness is what /readyz asks, one check per dependency a request needs.
// The platform registers them so that a module reports its state (a Ping or
// Ready method) without knowing about the HTTP server; httpserver runs each
// check bounded by httpserver.CheckTimeout.
var readiness = fx.Provide(
	httpserver.AsCheck(func(s *store.Store) httpserver.Check {
		return httpserver.Check{Name: "database", Fn: s.Ping}
	}),
	httpserver.AsCheck(func(m *messaging.Messaging) httpserver.Check {
		return httpserver.Check{Name: "relay", Fn: m.Ready}
	}),
	httpserver.AsCheck(func(g *gateway.Gateway) httpserver.Check {
		return httpserver.Check{Name: "gateway", Fn: g.Ready}
	}),
)
