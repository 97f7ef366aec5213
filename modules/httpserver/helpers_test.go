package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/problem"
)

// syncBuffer is a log sink safe to read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type fixture struct {
	srv  *Server
	reg  *prometheus.Registry
	logs *syncBuffer
	r    *mux.Router
}

// newFixture builds a server (not started) with the health routes, plus
// whatever routes add registers.
func newFixture(t *testing.T, cfg config.Server, checks []Check, add func(r *mux.Router)) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	RegisterHealth(HealthParams{Router: r, Gatherer: reg, Log: log, Checks: checks})
	if add != nil {
		add(r)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = config.Defaults().Server.ShutdownTimeout
	}
	srv, err := New(ServerParams{Cfg: cfg, Router: r, Log: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, reg: reg, logs: logs, r: r}
}

// start starts f's server and stops it at cleanup.
func (f *fixture) start(t *testing.T) string {
	t.Helper()
	if err := f.srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return "http://" + f.srv.Addr()
}

// do runs one request through the full handler chain in memory.
func (f *fixture) do(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	return w
}

func decodeProblem(t *testing.T, contentType string, body io.Reader) problem.Problem {
	t.Helper()
	if contentType != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %q", contentType, problem.ContentType)
	}
	var p problem.Problem
	if err := json.NewDecoder(body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	return p
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
