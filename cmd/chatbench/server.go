package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/mux"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/gateway"
	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

// runServer is `chatbench server`: the STOMP gateway alone (the real hub and
// transports, shipped limits) over the in-memory chat backend, with the two
// REST calls the load needs (dev tokens, create session). It measures the
// gateway without the database; point chatbench at cmd/chat with -url to
// measure the whole service. It prints its URL on stdout and runs until
// SIGINT/SIGTERM or until stdin closes (its parent died).
func runServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address (loopback)")
	queue := fs.Int("outbound-queue", 0, "limits.outbound_queue (0: shipped default)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	srv, err := startBuiltin(*listen, *queue, nil)
	if err != nil {
		return err
	}
	fmt.Println(srv.URL)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }() // parent gone: stop
	<-ctx.Done()
	return srv.Close()
}

// builtin is a running built-in server.
type builtin struct {
	URL string
	srv *http.Server
	gw  *gateway.Gateway
	hub *stomp.Hub
}

// startBuiltin starts the gateway-only server on listen (loopback only)
// over backend b, or over a backend of its own when b is nil. A shared
// backend delivers to the hub of the server that started last unless its
// owner sets where events go (b.SetHub).
func startBuiltin(listen string, queue int, b *stomptest.Backend) (*builtin, error) {
	if err := loopbackOnly(listen); err != nil {
		return nil, err
	}
	cfg, err := config.Load(config.Source{File: "/nonexistent/chat.yaml", Env: []string{}})
	if err != nil {
		return nil, err
	}
	cfg.Limits.MaxConnsPerUser = 0 // the load decides how many connections a user has
	// The load opens its connections as fast as it can dial them; the
	// admission limits guard a production instance, not a benchmark's setup.
	cfg.Limits.ConnectRate = 1e6
	cfg.Limits.MaxPreauthPerIP = max(cfg.Limits.MaxPreauthPerIP, 4096)
	if queue > 0 {
		cfg.Limits.OutboundQueue = queue
	}
	if b == nil {
		b = stomptest.NewBackend()
	}
	b.MaxContent = cfg.Limits.MaxMessageBytes
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hub, err := stomp.NewHub(stomp.Options{
		Chat: b, Commands: b, Auth: gateway.StompAuthenticator(benchAuth{}),
		Limits: cfg.Limits, Features: cfg.Features, Recovery: cfg.Recovery, Log: log,
	})
	if err != nil {
		return nil, err
	}
	b.SetHub(hub)
	gw, err := gateway.New(gateway.Options{Hub: hub, Auth: benchAuth{}, Limits: cfg.Limits, Features: cfg.Features, Log: log})
	if err != nil {
		return nil, err
	}
	r := mux.NewRouter()
	gw.Register(r)
	r.HandleFunc("/api/dev/token", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			UserID string `json:"userId"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil || in.UserID == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": "bench:" + in.UserID})
	}).Methods(http.MethodPost)
	r.HandleFunc("/api/chat/sessions", func(w http.ResponseWriter, r *http.Request) {
		p, err := benchAuth{}.Verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var in struct {
			Participants []string `json:"participants"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": b.CreateSession(append([]string{p.UserID}, in.Participants...)...)})
	}).Methods(http.MethodPost)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r.PathPrefix("/debug/pprof/").HandlerFunc(httppprof.Index) // loopback only, like the whole server

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with Shutdown in Close
	return &builtin{URL: "http://" + ln.Addr().String(), srv: srv, gw: gw, hub: hub}, nil
}

// Close closes the STOMP connections, then the HTTP server.
func (b *builtin) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.gw.Shutdown(ctx) // best effort on the way out
	return b.srv.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a vanished client is not ours to report
}

// benchAuth accepts "bench:<user>" tokens without expiry.
type benchAuth struct{}

func (benchAuth) Verify(token string) (auth.Principal, error) {
	user, ok := strings.CutPrefix(token, "bench:")
	if !ok || user == "" {
		return auth.Principal{}, errors.New("not a bench token")
	}
	return auth.Principal{UserID: user}, nil
}

// loopbackOnly refuses to load anything but this machine.
func loopbackOnly(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address: chatbench loads this machine only", hostport)
	}
	return nil
}
