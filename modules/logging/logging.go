// Package logging builds the process logger (log/slog, text or json, at
// log.level) and routes fx's own events through it.
package logging

import (
	"io"
	"log/slog"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/chat-service/chat/config"
)

// Module provides log, the *slog.Logger every other module narrows with
// fx.Decorate, and makes fx log its events through it (at debug level; fx
// errors at error level). The platform builds log with New before the fx
// graph exists, because the profile plugin is built (once) from it then.
// fx.WithLogger sits outside the fx.Module on purpose: inside it would only
// cover this module's events.
func Module(log *slog.Logger) fx.Option {
	return fx.Options(
		fx.Module("logging", fx.Supply(log)),
		fx.WithLogger(NewEventLogger),
	)
}

// New returns a logger writing to w in cfg.Format at cfg.Level, both as
// config validated them.
func New(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// NewEventLogger adapts log for fx.WithLogger: fx's chatty lifecycle events
// (provided, invoked, hook ran) go to debug, its errors to error.
func NewEventLogger(log *slog.Logger) fxevent.Logger {
	l := &fxevent.SlogLogger{Logger: log.With("module", "fx")}
	l.UseLogLevel(slog.LevelDebug)
	l.UseErrorLevel(slog.LevelError)
	return l
}
