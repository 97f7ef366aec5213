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
	Storage  config.Storage
	Log      *slog.Logger
}

// provide builds the Service; OnStop ends its group commit, after the
// edges that send through it have stopped.
func provide(lc fx.Lifecycle, p Params) (*Service, error) {
	s, err := NewService(Deps{
		Store: p.Store, Events: p.Events, Profiles: p.Profiles,
		Limits: p.Limits, Recovery: p.Recovery, GroupCommit: p.Storage.GroupCommit,
		Log: p.Log.With("module", "chat"),
	})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(s.Close))
	return s, nil
}
