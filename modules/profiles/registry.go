package profiles

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chat-service/chat/config"
)

// Env is what a plugin factory receives besides its own section.
type Env struct {
	// Log is already narrowed with module=profiles and provider=<name>.
	Log *slog.Logger
	// Timeout is profiles.timeout. The Directory bounds every call with it
	// already; an HTTP plugin may use it to size its client's own timeouts.
	Timeout time.Duration
}

// Factory builds a plugin's Provider from its raw profiles.<name> section
// (nil when chat.yaml has none). It decodes the section strictly (see
// DecodeSection), validates it without network calls and returns errors
// that name the offending key, e.g. "profiles.flairbit.base_url: required".
type Factory func(section map[string]any, env Env) (Provider, error)

// reserved are the keys of the profiles section the decorators own; a plugin
// of one of these names could never be configured.
var reserved = []string{"provider", "cache", "breaker", "timeout", "can_chat_fail_open"}

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a plugin available under name; plugins call it from init.
// An empty, reserved or duplicate name, or a nil factory, is a programming
// mistake and panics.
func Register(name string, f Factory) {
	if name == "" {
		panic("profiles: Register with an empty plugin name")
	}
	if slices.Contains(reserved, name) {
		panic(fmt.Sprintf("profiles: plugin name %q is a reserved profiles.* key", name))
	}
	if f == nil {
		panic(fmt.Sprintf("profiles: Register %q with a nil factory", name))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := factories[name]; dup {
		panic(fmt.Sprintf("profiles: plugin %q registered twice", name))
	}
	factories[name] = f
}

// Names lists the registered plugin names, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func factory(name string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := factories[name]
	return f, ok
}

func registered() string {
	names := Names()
	if len(names) == 0 {
		return "registered: none; import a plugins package, e.g. plugins/all"
	}
	return "registered: " + strings.Join(names, ", ")
}

// Check validates the plugin choice in cfg without building anything:
// profiles.provider names a registered plugin, and every profiles.<name>
// section belongs to a registered plugin. The error is one line that lists
// the registered names.
func Check(cfg config.Profiles) error {
	if cfg.Provider == "" {
		return fmt.Errorf("profiles.provider: required (%s)", registered())
	}
	if _, ok := factory(cfg.Provider); !ok {
		return fmt.Errorf("profiles.provider: unknown provider %q (%s)", cfg.Provider, registered())
	}
	sections := make([]string, 0, len(cfg.Plugins))
	for name := range cfg.Plugins {
		sections = append(sections, name)
	}
	slices.Sort(sections)
	for _, name := range sections {
		if _, ok := factory(name); !ok {
			return fmt.Errorf("profiles.%s: unknown key: no linked plugin owns this section (%s)", name, registered())
		}
		if _, err := section(cfg, name); err != nil {
			return err
		}
	}
	return nil
}

// Build checks cfg and builds the Provider of the plugin profiles.provider
// names from its own section. It makes no network calls.
func Build(cfg config.Profiles, env Env) (Provider, error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	f, _ := factory(cfg.Provider)
	raw, err := section(cfg, cfg.Provider)
	if err != nil {
		return nil, err
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.Timeout <= 0 {
		env.Timeout = cfg.Timeout
	}
	p, err := f(raw, env)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "profiles.") {
			return nil, fmt.Errorf("profiles.%s: %w", cfg.Provider, err)
		}
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("profiles.%s: plugin factory returned no provider", cfg.Provider)
	}
	return p, nil
}

// section returns the raw profiles.<name> section as a map (nil when absent).
func section(cfg config.Profiles, name string) (map[string]any, error) {
	v, ok := cfg.Plugins[name]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("profiles.%s: want a mapping of keys, got %T", name, v)
	}
	return m, nil
}
