package chat

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
)

// Module provides the *Service.
var Module = fx.Module("chat", fx.Provide(provide))

// Params are the fx-provided dependencies of the Service.
type Params struct {
	fx.In
	Store    Store
	Events   Events
	Profiles profiles.Directory
	Limits   config.Limits
	Recovery config.Recovery
	Log      *slog.Logger
}

func provide(p Params) (*Service, error) {
	return NewService(Deps{
		Store: p.Store, Events: p.Events, Profiles: p.Profiles,
		Limits: p.Limits, Recovery: p.Recovery, Log: p.Log.With("module", "chat"),
	})
}
