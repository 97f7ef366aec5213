package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
	"github.com/chat-service/chat/modules/stomp"
)

// Authenticator verifies client JWTs; *auth.Verifier is one.
type Authenticator interface {
	Verify(token string) (auth.Principal, error)
}

var _ Authenticator = (*auth.Verifier)(nil)

// Options configure a Gateway. Server, Limits and Features are taken as
// config validated them; zero durations take the defaults below.
type Options struct {
	Hub      *stomp.Hub
	Auth     Authenticator
	Server   config.Server // cors.allowed_origins is the WebSocket origin allow-list
	Limits   config.Limits
	Features config.Features
	Log      *slog.Logger

	Registerer prometheus.Registerer // nil: metrics are kept but not registered

	WriteWait  time.Duration // deadline of every write; default 10s
	PongWait   time.Duration // read deadline, pushed forward by every message and pong; default 60s
	PingPeriod time.Duration // WebSocket pings, shorter than PongWait; default 54s
	CloseWait  time.Duration // deadline of a close frame; default 1s

	SockJSHeartbeat  time.Duration // SockJS "h" frames; default 25s
	SockJSDisconnect time.Duration // a SockJS session without a receiving request closes after this; default 5s
}

func (o *Options) defaults() {
	if o.WriteWait <= 0 {
		o.WriteWait = 10 * time.Second
	}
	if o.PongWait <= 0 {
		o.PongWait = 60 * time.Second
	}
	if o.PingPeriod <= 0 || o.PingPeriod >= o.PongWait {
		o.PingPeriod = o.PongWait * 9 / 10
	}
	if o.CloseWait <= 0 {
		o.CloseWait = time.Second
	}
	if o.SockJSHeartbeat <= 0 {
		o.SockJSHeartbeat = 25 * time.Second
	}
	if o.SockJSDisconnect <= 0 {
		o.SockJSDisconnect = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// readBufferSize is the size of a WebSocket connection's read buffer
// (gorilla takes a hijacked reader over 256 bytes as its own).
const readBufferSize = 512

// readLimit bounds one transport message. A message may carry several
// frames, so it is a few frames' worth; the STOMP decoder enforces
// limits.max_frame_bytes per frame with an ERROR.
func (o Options) readLimit() int64 { return 4*int64(o.Limits.MaxFrameBytes) + 1024 }

// Gateway serves STOMP over WebSocket at /ws and over SockJS under /ws/.
type Gateway struct {
	o           Options
	log         *slog.Logger
	upgrader    *websocket.Upgrader
	checkOrigin func(*http.Request) bool
	sockjs      http.Handler
	closing     atomic.Bool
	draining    atomic.Bool // /readyz answers 503: the drain has begun
	adm         *admission
	sjs         *sockjsSessions
}

// New returns a Gateway for o.
func New(o Options) (*Gateway, error) {
	if o.Hub == nil || o.Auth == nil {
		return nil, errors.New("gateway: Hub and Auth are required")
	}
	o.defaults()
	adm, err := newAdmission(o)
	if err != nil {
		return nil, err
	}
	g := &Gateway{o: o, log: o.Log, checkOrigin: httpserver.CheckOrigin(o.Server.CORS.AllowedOrigins), adm: adm,
		sjs: newSockJSSessions(o.SockJSDisconnect + 5*time.Second)}
	g.upgrader = &websocket.Upgrader{
		Subprotocols: Subprotocols,
		CheckOrigin:  g.checkOrigin,
		// Memory per idle connection: a small read buffer of its own
		// (client frames are small; a larger message is read past it)
		// instead of net/http's 4 KiB one, and no write buffer (writes
		// borrow one from the pool). ReadBufferSize 0: gorilla reads
		// through the readBufferSize reader batchHijacker hands it.
		ReadBufferSize:  0,
		WriteBufferPool: &sync.Pool{},
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			problem.Error(w, status, "invalid_upgrade", reason.Error())
		},
	}
	g.sockjs = g.newSockJS()
	return g, nil
}

// Register adds GET /ws and, when features.sockjs is on, the SockJS routes
// under /ws/ to r.
func (g *Gateway) Register(r *mux.Router) {
	r.HandleFunc("/ws", g.serveWebSocket).Methods(http.MethodGet)
	if g.o.Features.SockJS {
		r.PathPrefix("/ws/").Handler(g.sockjs)
	}
}

// Shutdown stops accepting connections, closes the open ones (a close frame
// under CloseWait each) and waits for their loops until ctx ends.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closing.Store(true)
	return g.o.Hub.Shutdown(ctx)
}

// Drain is the graceful stop (server.drain_delay, server.drain_spread):
// /readyz answers 503 at once (Ready) while everything keeps
// working for delay, so that the load balancer stops sending new clients;
// then new connections are refused and every open one gets an ERROR
// "server shutting down" and is closed, the closes spread over spread;
// then it waits for the connections' loops until ctx ends.
func (g *Gateway) Drain(ctx context.Context, delay, spread time.Duration) error {
	g.draining.Store(true)
	g.log.Info("draining: /readyz answers 503", "drain_delay", delay, "drain_spread", spread, "connections", g.o.Hub.Connections())
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	g.closing.Store(true)
	return g.o.Hub.Drain(ctx, spread)
}

// Ready is the gateway's part of /readyz (the platform's "gateway"
// check): failing once a drain has begun.
func (g *Gateway) Ready(context.Context) error {
	if g.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// upgradePrincipal authenticates a request by the first place that holds a
// token: the Authorization header, then (when query is set) access_token.
// An invalid token there is answered 401 and ok is false; no token at all
// gives a nil principal, leaving authentication to CONNECT.
func (g *Gateway) upgradePrincipal(w http.ResponseWriter, r *http.Request, header bool) (*stomp.Principal, bool) {
	var token string
	switch {
	case header && r.Header.Get("Authorization") != "":
		t, ok := auth.BearerToken(r)
		if !ok {
			unauthorized(w, "the Authorization header is not a Bearer token")
			return nil, false
		}
		token = t
	default:
		q := r.URL.Query() // parsed once: every WebSocket upgrade comes here
		if !q.Has("access_token") {
			return nil, true
		}
		token = q.Get("access_token")
	}
	p, err := g.o.Auth.Verify(token)
	if err != nil {
		g.log.Info("websocket upgrade refused: invalid token", "remote_addr", r.RemoteAddr)
		unauthorized(w, "the token is invalid or expired")
		return nil, false
	}
	return &p, true // auth.Principal and stomp.Principal are one type (ident.Principal)
}

func unauthorized(w http.ResponseWriter, detail string) {
	problem.Error(w, http.StatusUnauthorized, "unauthorized", detail)
}

// StompAuthenticator verifies STOMP CONNECT tokens with a.
func StompAuthenticator(a Authenticator) stomp.Authenticator {
	return stomp.AuthenticatorFunc(a.Verify)
}
