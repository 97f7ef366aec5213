package profiles

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
)

// Module provides the Directory for cfg: the plugin named by
// profiles.provider, built from its own profiles.<name> section, wrapped in
// the cache, breaker and timeout decorators. An unknown provider or a
// section no registered plugin owns fails fx.New with one line listing the
// registered names; a plugin's config error (naming its key) fails it when
// the Directory is built. OnStop stops background upstream calls.
//
// It needs nothing from the graph; it uses a *slog.Logger and a
// prometheus.Registerer when they are provided.
func Module(cfg config.Profiles) fx.Option {
	if err := Check(cfg); err != nil {
		return fx.Error(err)
	}
	return fx.Module("profiles",
		fx.Provide(func(p ModuleParams) (Directory, error) {
			c, err := New(cfg, p.Log, p.Registerer)
			if err != nil {
				return nil, err
			}
			p.Lifecycle.Append(fx.StopHook(func(context.Context) error { return c.Close() }))
			return c, nil
		}),
	)
}

// ModuleParams is what Module takes from the fx graph.
type ModuleParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Log        *slog.Logger          `optional:"true"`
	Registerer prometheus.Registerer `optional:"true"`
}

// Validate reports the first configuration error of cfg as one line naming
// the key, without network calls: the plugin choice (Check), the decorator
// settings, and the selected plugin's own section (its factory runs and the
// provider is closed again). cmd/chat or the platform can call it before
// fx.New, whose errors wrap a failing constructor's message in fx detail.
func Validate(cfg config.Profiles) error {
	if err := validateDecorators(cfg); err != nil {
		return err
	}
	p, err := Build(cfg, Env{})
	if err != nil {
		return err
	}
	if cl, ok := p.(interface{ Close() error }); ok {
		_ = cl.Close() // only validating; a close error says nothing about the config
	}
	return nil
}

// New builds the Directory for cfg without fx: Build, then NewCache. log
// and reg may be nil. The caller owns Close.
func New(cfg config.Profiles, log *slog.Logger, reg prometheus.Registerer) (*Cache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("module", "profiles")
	if err := validateDecorators(cfg); err != nil {
		return nil, err
	}
	p, err := Build(cfg, Env{Log: log.With("provider", cfg.Provider), Timeout: cfg.Timeout})
	if err != nil {
		return nil, err
	}
	c, err := NewCache(CacheParams{Name: cfg.Provider, Provider: p, Cfg: cfg, Log: log, Registerer: reg})
	if err != nil {
		if cl, ok := p.(interface{ Close() error }); ok {
			_ = cl.Close() // the config error is what matters
		}
		return nil, err
	}
	return c, nil
}
