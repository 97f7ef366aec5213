package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       config.Log
		wantJSON  bool
		wantDebug bool
		wantInfo  bool
	}{
		{name: "text info", cfg: config.Log{Level: "info", Format: "text"}, wantInfo: true},
		{name: "json debug", cfg: config.Log{Level: "debug", Format: "json"}, wantJSON: true, wantDebug: true, wantInfo: true},
		{name: "json warn hides info", cfg: config.Log{Level: "warn", Format: "json"}, wantJSON: true},
		{name: "error hides warn", cfg: config.Log{Level: "error", Format: "text"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := New(tc.cfg, &buf)
			log.Debug("dbg")
			log.Info("inf", "user_id", "alice")
			out := buf.String()
			if got := strings.Contains(out, "dbg"); got != tc.wantDebug {
				t.Errorf("debug logged = %v, want %v: %s", got, tc.wantDebug, out)
			}
			if got := strings.Contains(out, "inf"); got != tc.wantInfo {
				t.Errorf("info logged = %v, want %v: %s", got, tc.wantInfo, out)
			}
			if tc.wantInfo {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				line := lines[len(lines)-1]
				isJSON := json.Valid([]byte(line))
				if isJSON != tc.wantJSON {
					t.Errorf("json = %v, want %v: %s", isJSON, tc.wantJSON, line)
				}
			}
		})
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	var log *slog.Logger
	app := fxtest.New(t,
		Module(New(config.Defaults().Log, io.Discard)),
		fx.Populate(&log),
	)
	app.RequireStart().RequireStop()
	if log == nil || !log.Enabled(context.Background(), slog.LevelInfo) || log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("the shipped log.level (info) is not the provided logger's")
	}
}
