// Package greeting is the profile plugin of the custom-binary example
// (cmd/example-custom, docs/plugins.md): every user is known, named
// "<prefix>, <user id>". Its chat.yaml section:
//
//	profiles:
//	  provider: greeting
//	  greeting:
//	    prefix: Hello   # required
package greeting

import (
	"context"
	"errors"

	"github.com/chat-service/chat/modules/profiles"
)

// Name is the plugin's name and the key of its chat.yaml section.
const Name = "greeting"

func init() {
	profiles.Register(Name, func(section map[string]any, _ profiles.Env) (profiles.Provider, error) {
		var cfg Config
		if err := profiles.DecodeSection(Name, section, &cfg); err != nil {
			return nil, err
		}
		if cfg.Prefix == "" {
			return nil, errors.New("profiles.greeting.prefix: required")
		}
		return Provider{prefix: cfg.Prefix}, nil
	})
}

// Config is the profiles.greeting section.
type Config struct {
	Prefix string `koanf:"prefix"`
}

// Provider names every user "<prefix>, <id>".
type Provider struct{ prefix string }

var _ profiles.Provider = Provider{}

// Profiles answers every id.
func (p Provider) Profiles(_ context.Context, ids []string) (map[string]profiles.Profile, error) {
	out := make(map[string]profiles.Profile, len(ids))
	for _, id := range ids {
		out[id] = profiles.Profile{UserID: id, DisplayName: p.prefix + ", " + id}
	}
	return out, nil
}
