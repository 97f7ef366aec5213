// Package logging builds the process logger (log/slog, text or json, at
// log.level) and routes fx's own events through it.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/chat-service/chat/config"
)

// Module provides the *slog.Logger every other module narrows with
// fx.Decorate, and makes fx log its events through it (at debug level; fx
// errors at error level). fx.WithLogger sits outside the fx.Module on
// purpose: inside it would only cover this module's events.
var Module = fx.Options(
	fx.Module("logging", fx.Provide(NewLogger)),
	fx.WithLogger(NewEventLogger),
)

// LoggerParams are the dependencies of NewLogger.
type LoggerParams struct {
	fx.In
	Cfg config.Log
}

// NewLogger is the fx constructor: the logger of Cfg writing to stderr.
// Unlike New it rejects a level or format it does not know.
func NewLogger(p LoggerParams) (*slog.Logger, error) {
	if _, err := ParseLevel(p.Cfg.Level); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	switch strings.ToLower(p.Cfg.Format) {
	case "", "text", "json":
	default:
		return nil, fmt.Errorf("log.format: %q is not one of text, json", p.Cfg.Format)
	}
	return New(p.Cfg, os.Stderr), nil
}

// New returns a logger writing to w in cfg.Format ("json", else text) at
// cfg.Level. Values config.Validate would reject fall back to text and info,
// so New is safe to call before the configuration is known to be valid (for
// example to report a configuration error).
func New(cfg config.Log, w io.Writer) *slog.Logger {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseLevel maps debug, info, warn and error (any case; "" is info) to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// NewEventLogger adapts log for fx.WithLogger: fx's chatty lifecycle events
// (provided, invoked, hook ran) go to debug, its errors to error.
func NewEventLogger(log *slog.Logger) fxevent.Logger {
	l := &fxevent.SlogLogger{Logger: log.With("module", "fx")}
	l.UseLogLevel(slog.LevelDebug)
	l.UseErrorLevel(slog.LevelError)
	return l
}
