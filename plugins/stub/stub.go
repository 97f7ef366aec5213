// Package stub is the profile plugin that serves profiles from chat.yaml's
// profiles.stub section, the embedded default. It registers "stub". Ids it
// has no entry for get a profile with a display name derived from the id,
// so a development setup shows readable names for any dev-token user.
package stub

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/chat-service/chat/modules/profiles"
)

// Name is the plugin's name in profiles.provider and its section key.
const Name = "stub"

func init() {
	profiles.Register(Name, func(section map[string]any, _ profiles.Env) (profiles.Provider, error) {
		var cfg Config
		if err := profiles.DecodeSection(Name, section, &cfg); err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// Config is the profiles.stub section.
type Config struct {
	// Profiles maps a user id to its profile.
	Profiles map[string]ProfileConfig `koanf:"profiles"`
	// DeniedPairs are pairs of user ids CanChat refuses, both directions.
	DeniedPairs [][]string `koanf:"denied_pairs"`
}

// ProfileConfig is one entry of profiles.stub.profiles.
type ProfileConfig struct {
	DisplayName string `koanf:"display_name"` // empty: generated from the id
	AvatarURL   string `koanf:"avatar_url"`
}

// Provider serves a fixed set of profiles. It is safe for concurrent use.
type Provider struct {
	profiles map[string]profiles.Profile
	denied   map[[2]string]bool
}

var (
	_ profiles.Provider    = (*Provider)(nil)
	_ profiles.PairChecker = (*Provider)(nil)
)

// New validates cfg and returns its Provider.
func New(cfg Config) (*Provider, error) {
	p := &Provider{
		profiles: make(map[string]profiles.Profile, len(cfg.Profiles)),
		denied:   make(map[[2]string]bool, 2*len(cfg.DeniedPairs)),
	}
	for id, pc := range cfg.Profiles {
		key := fmt.Sprintf("profiles.stub.profiles.%s", id)
		if strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("profiles.stub.profiles: empty user id")
		}
		if pc.AvatarURL != "" {
			if u, err := url.Parse(pc.AvatarURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("%s.avatar_url: want an absolute http(s) URL, got %q", key, pc.AvatarURL)
			}
		}
		name := pc.DisplayName
		if name == "" {
			name = DisplayName(id)
		}
		p.profiles[id] = profiles.Profile{UserID: id, DisplayName: name, AvatarURL: pc.AvatarURL}
	}
	for i, pair := range cfg.DeniedPairs {
		if len(pair) != 2 || pair[0] == "" || pair[1] == "" {
			return nil, fmt.Errorf("profiles.stub.denied_pairs[%d]: want two user ids, got %q", i, pair)
		}
		p.denied[[2]string{pair[0], pair[1]}] = true
		p.denied[[2]string{pair[1], pair[0]}] = true
	}
	return p, nil
}

// Profiles returns the configured profile of each id, or a generated one.
func (p *Provider) Profiles(_ context.Context, ids []string) (map[string]profiles.Profile, error) {
	out := make(map[string]profiles.Profile, len(ids))
	for _, id := range ids {
		if id == "" {
			continue
		}
		if pr, ok := p.profiles[id]; ok {
			out[id] = pr
			continue
		}
		out[id] = profiles.Profile{UserID: id, DisplayName: DisplayName(id)}
	}
	return out, nil
}

// CanChat refuses the configured denied pairs and allows everything else.
func (p *Provider) CanChat(_ context.Context, from, to string) (bool, error) {
	return !p.denied[[2]string{from, to}], nil
}

// DisplayName derives a readable name from a user id, deterministically:
// "alice" → "Alice", "bob_smith" → "Bob Smith", "dave.lee@example.com" →
// "Dave Lee"; an id without letters (a number, most UUIDs' prefix aside)
// becomes "User 12345".
func DisplayName(id string) string {
	local, _, _ := strings.Cut(id, "@")
	words := strings.FieldsFunc(local, func(r rune) bool {
		return r == '.' || r == '_' || r == '-' || r == '+' || unicode.IsSpace(r)
	})
	letters := false
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
		letters = letters || strings.IndexFunc(w, unicode.IsLetter) >= 0
	}
	name := strings.Join(words, " ")
	if !letters {
		name = "User " + id
	}
	if r := []rune(name); len(r) > 64 {
		name = string(r[:63]) + "…"
	}
	return name
}
