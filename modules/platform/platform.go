// Package platform turns a Config into the fx options of the service: the
// one place where backends, features and the profile plugin are chosen.
// Reading Options tells a newcomer what runs.
package platform

import (
	"os"
	"time"

	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/logging"
	"github.com/chat-service/chat/modules/messaging"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/rest"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/webclient"
)

// Options assembles the application cfg describes. It fails, naming the key,
// when cfg asks for something this binary cannot provide (an unknown plugin).
func Options(cfg config.Config) ([]fx.Option, error) {
	// The logger exists before the graph: the profile plugin is built from
	// it, once, here, so that its configuration errors are one line naming
	// the key rather than an fx error.
	log := logging.New(cfg.Log, os.Stderr)
	provider, err := profiles.Build(cfg.Profiles, profiles.Env{
		Log: log.With("module", "profiles", "provider", cfg.Profiles.Provider), Timeout: cfg.Profiles.Timeout,
	})
	if err != nil {
		return nil, err
	}
	opts := []fx.Option{
		// Each module takes only its own section.
		fx.Supply(cfg.Server, cfg.Auth, cfg.Storage, cfg.Relay, cfg.Outbox, cfg.Commands,
			cfg.Features, cfg.Recovery, cfg.Limits),
		// The drain (readyz 503, then spread closes) comes before the shutdown proper.
		fx.StopTimeout(cfg.Server.DrainDelay + cfg.Server.DrainSpread + cfg.Server.ShutdownTimeout + 5*time.Second),

		logging.Module(log), // *slog.Logger from log.*, fx events through it
		httpserver.Module,   // router, middleware, /healthz /readyz /metrics, listener
		auth.Module,         // client JWTs; POST /api/dev/token when auth.dev.enabled

		store.Module,                            // storage.driver: sqlite | postgres, migrations at start
		profiles.Module(cfg.Profiles, provider), // profiles.provider plugin behind breaker + cache
		chat.Module,                             // the domain rules
		rest.Module,                             // /api/chat/*

		// relay.driver: memory | amqp; the outbox, its forwarder, the relay
		// subscriber feeding the local hub and the chat.send command queue.
		messaging.Module,
		fx.Provide(func(s *chat.Service) messaging.Sender { return s }),
		// Every commit wakes the outbox forwarder (no poll in the path).
		fx.Invoke(func(s *store.Store, m *messaging.Messaging) { s.OnCommit(m.Events().Committed) }),
	}
	if cfg.Features.Presence {
		// Who is online, shared between instances (modules/presence).
		// Before the gateway, so that its stop follows the gateway's drain.
		opts = append(opts, presenceOptions(cfg.Presence))
	}
	// STOMP at /ws (and SockJS when features.sockjs); its hub receives every
	// relay event and feeds local subscriptions. Its stop hook, registered
	// last, runs first: the drain.
	opts = append(opts, gateway.Module,
		readiness, // /readyz: database, relay, gateway
	)
	if cfg.Features.WebClient {
		opts = append(opts, webclient.Module) // the browser client at /
	}
	return opts, nil
}
