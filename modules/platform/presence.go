package platform

import (
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/presence"
	"github.com/chat-service/chat/modules/rest"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/store"
)

// presenceOptions is what features.presence adds: the module, its section,
// and the store, hub and tracker under the interfaces their users take.
func presenceOptions(cfg config.Presence) fx.Option {
	return fx.Options(
		fx.Supply(cfg),
		fx.Provide(
			func(s *store.Store) presence.Contacts { return s },
			func(h *stomp.Hub) presence.Hub { return h },
			func(t *presence.Tracker) rest.Presence { return t },
		),
		presence.Module,
	)
}
