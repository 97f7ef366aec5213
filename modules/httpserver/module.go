// Package httpserver owns the HTTP edge of the process: the gorilla/mux
// router other modules add routes to, the middleware every request passes
// (in the fixed order documented on New), the listener lifecycle, /healthz,
// /readyz and /metrics, and the Prometheus registry.
//
// Other modules register routes from an fx.Invoke that takes *mux.Router:
//
//	fx.Invoke(func(r *mux.Router, h *Handler) {
//		api := r.PathPrefix("/api/chat").Subrouter()
//		api.Use(verifier.Middleware)
//		api.HandleFunc("/sessions", h.create).Methods(http.MethodPost)
//	})
//
// Route-scoped middleware goes on a subrouter with Use (it runs only for
// matched routes, inside the global chain, whose order New documents).
package httpserver

import (
	"log/slog"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
)

// Module provides *mux.Router, *Server (started and stopped with the app),
// *prometheus.Registry and it as prometheus.Registerer and prometheus.Gatherer,
// and registers /healthz, /readyz and /metrics.
var Module = fx.Module("httpserver",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "httpserver") }),
	fx.Provide(
		NewRouter,
		NewRegistry,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		func(r *prometheus.Registry) prometheus.Gatherer { return r },
		New,
	),
	fx.Invoke(RegisterHealth, run),
)

// NewRouter returns the router every module adds its routes to. Unknown
// routes answer a 404 problem `not_found`, a known path with the wrong method
// a 405 problem `method_not_allowed`; the matched route template is recorded
// for the access log and metrics.
func NewRouter() (*mux.Router, error) {
	r := mux.NewRouter()
	r.NotFoundHandler = notFound()
	r.MethodNotAllowedHandler = methodNotAllowed()
	r.Use(recordRoute)
	return r, nil
}

// NewRegistry returns the registry /metrics serves, with the Go runtime and
// process collectors already registered.
func NewRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// ServerParams are the dependencies of New.
type ServerParams struct {
	fx.In
	Cfg        config.Server
	Router     *mux.Router
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// run ties the server to the app: OnStart binds the listener (a busy port
// fails start-up), OnStop drains it. Should serving stop on its own, the app
// is shut down with a non-zero exit code.
func run(lc fx.Lifecycle, s *Server, sd fx.Shutdowner) {
	s.onServeError = func(error) { _ = sd.Shutdown(fx.ExitCode(1)) } // the error is logged by the server; a second shutdown request is harmless
	lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
}
