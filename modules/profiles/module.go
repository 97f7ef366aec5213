package profiles

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
)

// Module provides the Directory over p, the provider the platform built
// (once, with Build) from the plugin profiles.provider names: p wrapped in
// Decorate's Breaker and CachedDirectory. OnStop stops background upstream
// calls and closes p.
//
// It needs nothing from the graph; it uses a *slog.Logger and a
// prometheus.Registerer when they are provided.
func Module(cfg config.Profiles, p Provider) fx.Option {
	return fx.Module("profiles",
		fx.Provide(func(mp ModuleParams) (Directory, error) {
			log := mp.Log
			if log == nil {
				log = slog.New(slog.DiscardHandler)
			}
			d, err := Decorate(DecorateParams{Name: cfg.Provider, Provider: p, Cfg: cfg,
				Log: log.With("module", "profiles"), Registerer: mp.Registerer})
			if err != nil {
				return nil, err
			}
			mp.Lifecycle.Append(fx.StopHook(func(context.Context) error { return d.Close() }))
			return d, nil
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

// New builds the Directory for cfg without fx: Build, then Decorate. log and
// reg may be nil. The caller owns Close.
func New(cfg config.Profiles, log *slog.Logger, reg prometheus.Registerer) (*CachedDirectory, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("module", "profiles")
	p, err := Build(cfg, Env{Log: log.With("provider", cfg.Provider), Timeout: cfg.Timeout})
	if err != nil {
		return nil, err
	}
	d, err := Decorate(DecorateParams{Name: cfg.Provider, Provider: p, Cfg: cfg, Log: log, Registerer: reg})
	if err != nil {
		if cl, ok := p.(interface{ Close() error }); ok {
			_ = cl.Close() // the metrics error is what matters
		}
		return nil, err
	}
	return d, nil
}
