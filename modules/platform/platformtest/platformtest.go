// Package platformtest starts the whole assembled service in a test, the
// way cmd/chat does, on a loopback port, and talks to it over HTTP.
package platformtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/platform"
	_ "github.com/chat-service/chat/plugins/all" // the providers cmd/chat links
)

// Secret is the HS256 secret test configurations verify client tokens with.
const Secret = "platformtest-secret-0123456789abcdef"

// Config is the shipped default configuration on a free loopback port, with
// the given storage, an HS256 secret for test tokens and quiet logs.
func Config(t testing.TB, storage config.Storage) config.Config {
	t.Helper()
	cfg, err := config.Load(config.Source{File: "/nonexistent/chat.yaml", Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Addr = "127.0.0.1:0"
	if storage.GroupCommit == (config.GroupCommit{}) {
		storage.GroupCommit = cfg.Storage.GroupCommit // the shipped default, on
	}
	cfg.Storage = storage
	cfg.Auth.JWT.HMACSecret = Secret
	cfg.Log.Level = "warn"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	cfg.Server.DrainDelay, cfg.Server.DrainSpread = 0, 0 // tests stop at once
	return cfg
}

// App is a running service.
type App struct {
	t      testing.TB
	URL    string
	Cfg    config.Config
	Client *http.Client
	app    *fxtest.App
}

// Start assembles cfg with platform.Options, starts it and stops it at
// cleanup. extra options may populate or decorate what a test needs.
func Start(t testing.TB, cfg config.Config, extra ...fx.Option) *App {
	t.Helper()
	opts, err := platform.Options(cfg)
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	var srv *httpserver.Server
	opts = append(opts, fx.Populate(&srv), fx.NopLogger)
	opts = append(opts, extra...)
	app := fxtest.New(t, opts...)
	app.RequireStart()
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second}
	t.Cleanup(func() {
		// Connections the client dialed but never used count as busy for
		// the first 5 s of a graceful shutdown: close them first.
		client.CloseIdleConnections()
		app.RequireStop()
	})
	return &App{t: t, URL: "http://" + srv.Addr(), Cfg: cfg, Client: client, app: app}
}

// Token mints a client JWT for user, valid for an hour.
func Token(t testing.TB, user string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(Secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("status %d body %q: %v", r.Status, r.Body, err)
	}
}

// Problem decodes a problem document and returns its code.
func (r Response) Problem(t testing.TB) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("status %d: content type %q, want application/problem+json (body %q)", r.Status, ct, r.Body)
	}
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	r.JSON(t, &p)
	if p.Status != r.Status {
		t.Fatalf("problem status %d differs from HTTP status %d", p.Status, r.Status)
	}
	return p.Code
}

// Do sends a request. body may be nil, a string or []byte (sent as is, as
// application/json) or any other value (JSON-encoded). token "" sends none.
func (a *App) Do(method, path, token string, body any, header ...string) Response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := a.Client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: data}
}
