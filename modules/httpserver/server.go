package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/chat-service/chat/config"
)

// Server is the HTTP(S) listener. It is created stopped; Start binds and
// serves, Stop drains.
type Server struct {
	cfg          config.Server
	log          *slog.Logger
	srv          *http.Server
	handler      http.Handler
	onServeError func(error)

	mu      sync.Mutex
	ln      net.Listener
	done    chan struct{}
	started bool
	err     error // why serving ended, nil after a clean Stop
}

// New builds the server and its handler chain. Every request passes, from
// the outside in:
//
//  1. request id   X-Request-ID kept when well-formed, else generated; echoed
//     on the response and available through RequestID(ctx).
//  2. proxies      when the TCP peer is in server.trusted_proxies, the client
//     address from X-Forwarded-For replaces r.RemoteAddr (see trustedProxies).
//  3. observe      Prometheus metrics and the access log; it wraps recovery
//     so a panic is counted and logged as the 500 it became.
//  4. recover      a panic becomes a logged error and a 500 problem
//     `internal` (when nothing was written yet); the server keeps serving.
//  5. cors         CORS headers for server.cors.allowed_origins; answers
//     preflight OPTIONS for allowed origins.
//  6. router       mux; it records the matched route template, then runs the
//     route's own middleware (auth, body limits) and handler.
func New(p ServerParams) (*Server, error) {
	if p.Router == nil {
		return nil, errors.New("http server: no router")
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	m, err := newHTTPMetrics(p.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register http metrics: %w", err)
	}
	var h http.Handler = p.Router
	h = CORS(p.Cfg.CORS.AllowedOrigins)(h)
	h = recoverer(p.Log)(h)
	h = observe(p.Log, m)(h)
	proxies, err := trustedProxies(p.Cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	h = proxies(h)
	h = requestID(h)

	s := &Server{cfg: p.Cfg, log: p.Log, handler: h}
	s.srv = &http.Server{
		Addr:              p.Cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(p.Log.Handler(), slog.LevelInfo),
		// No ReadTimeout/WriteTimeout: WebSocket and SockJS streams are long-lived
		// and set their own deadlines.
	}
	return s, nil
}

// Handler is the full handler chain, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address the listener is bound to (the real port when
// server.addr asked for :0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Done is closed when serving has ended, after Stop or on a serve error.
// It is nil before Start.
func (s *Server) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Err is why serving ended on its own, or nil.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Start binds the listener synchronously (a busy port or a bad certificate
// is an error here) and then serves in a goroutine. ctx bounds only the bind.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("http server already started")
	}
	tlsOn := s.cfg.TLS.Enabled()
	if tlsOn {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("server.tls: load cert_file and key_file: %w", err)
		}
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server.addr: listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln, s.done, s.started = ln, make(chan struct{}), true
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	s.log.Info("http server listening", "addr", ln.Addr().String(), "scheme", scheme)
	go s.serve(ln, tlsOn, s.done)
	return nil
}

func (s *Server) serve(ln net.Listener, tlsOn bool, done chan struct{}) {
	var err error
	if tlsOn {
		err = s.srv.ServeTLS(ln, "", "") // certificates are in TLSConfig
	} else {
		err = s.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.mu.Lock()
	s.err = err
	onErr := s.onServeError
	s.mu.Unlock()
	close(done)
	if err != nil {
		s.log.Error("http server stopped serving", "err", err)
		if onErr != nil {
			onErr(err)
		}
	}
}

// Stop stops accepting, lets in-flight requests finish within
// server.shutdown_timeout (and ctx), then closes whatever is left.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	started, done := s.started, s.done
	s.mu.Unlock()
	if !started {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close() // best effort after the grace period; the Shutdown error says why
		err = fmt.Errorf("shut down http server: %w", err)
	}
	<-done
	s.log.Info("http server stopped")
	return err
}
