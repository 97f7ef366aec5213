package logging

import (
	"bytes"
	"encoding/json"
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
		{name: "json warn hides info", cfg: config.Log{Level: "warn", Format: "JSON"}, wantJSON: true},
		{name: "bad values fall back", cfg: config.Log{Level: "loud", Format: "xml"}, wantInfo: true},
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

func TestNewLoggerRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     config.Log
		wantErr string
	}{
		{name: "ok", cfg: config.Log{Level: "error", Format: "json"}},
		{name: "bad level", cfg: config.Log{Level: "loud", Format: "json"}, wantErr: "log.level"},
		{name: "bad format", cfg: config.Log{Level: "info", Format: "xml"}, wantErr: "log.format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewLogger(LoggerParams{Cfg: tc.cfg})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewLogger: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	var log *slog.Logger
	app := fxtest.New(t,
		fx.Supply(config.Log{Level: "info", Format: "text"}),
		Module,
		fx.Populate(&log),
	)
	app.RequireStart().RequireStop()
	if log == nil {
		t.Fatal("no logger provided")
	}
}
