package httpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"

	"github.com/chat-service/chat/modules/problem"
)

// CheckTimeout bounds each readiness check.
const CheckTimeout = 2 * time.Second

// HealthParams are the dependencies of RegisterHealth.
type HealthParams struct {
	fx.In
	Router   *mux.Router
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
	Checks   []Check `group:"readiness"`
}

// RegisterHealth adds GET /healthz (200 while the process runs), GET /readyz
// (every Check, concurrently, each bounded by CheckTimeout) and GET /metrics.
func RegisterHealth(p HealthParams) {
	p.Router.HandleFunc("/healthz", healthz).Methods(http.MethodGet, http.MethodHead)
	p.Router.Handle("/readyz", Readyz(p.Checks, CheckTimeout)).Methods(http.MethodGet, http.MethodHead)
	p.Router.Handle("/metrics", promhttp.HandlerFor(p.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(p.Log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})).Methods(http.MethodGet)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyBody is the 200 answer of /readyz.
type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// unreadyBody is the 503 answer: a problem document (code `unavailable`,
// detail "database: connection refused; relay: ...") plus every check's state.
type unreadyBody struct {
	problem.Problem
	Checks map[string]string `json:"checks"`
}

// Readyz runs checks concurrently, each with its own timeout, and answers
// 200 {"status":"ready","checks":{"database":"ok"}} or a 503 problem naming
// every failing check. A check that panics or overruns counts as failing.
func Readyz(checks []Check, timeout time.Duration) http.Handler {
	checks = slices.Clone(checks)
	slices.SortStableFunc(checks, func(a, b Check) int { return strings.Compare(a.Name, b.Name) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() { errs[i] = runCheck(r.Context(), c, timeout) })
		}
		wg.Wait()

		states := make(map[string]string, len(checks))
		var failed []string
		for i, c := range checks {
			name := c.Name
			if name == "" {
				name = fmt.Sprintf("check_%d", i)
			}
			if _, dup := states[name]; dup {
				name = fmt.Sprintf("%s_%d", name, i)
			}
			if errs[i] != nil {
				states[name] = errs[i].Error()
				failed = append(failed, name+": "+errs[i].Error())
				continue
			}
			states[name] = "ok"
		}
		if len(failed) == 0 {
			writeJSON(w, http.StatusOK, readyBody{Status: "ready", Checks: states})
			return
		}
		body := unreadyBody{
			Problem: problem.New(http.StatusServiceUnavailable, "unavailable", strings.Join(failed, "; ")),
			Checks:  states,
		}
		w.Header().Set("Content-Type", problem.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(body) // the status is sent; a gone prober is not ours to report
	})
}

// runCheck runs c with its own deadline and returns even if c ignores it.
func runCheck(ctx context.Context, c Check, timeout time.Duration) error {
	if c.Fn == nil {
		return fmt.Errorf("no check function")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := make(chan error, 1) // buffered: a late check must not leak blocked
	go func() {
		defer func() {
			if p := recover(); p != nil {
				res <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		res <- c.Fn(ctx)
	}()
	select {
	case err := <-res:
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("timed out after %s", timeout)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a gone client is not ours to report
}

func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Error(w, http.StatusNotFound, "not_found", "no such route")
	})
}

func methodNotAllowed() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
	})
}
