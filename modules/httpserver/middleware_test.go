package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/logging"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	routes := func(r *mux.Router) {
		r.HandleFunc("/api/chat/unread", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }).Methods(http.MethodGet)
	}
	listed := newFixture(t, config.Server{CORS: config.CORS{AllowedOrigins: []string{"https://app.example.com/"}}}, nil, routes)
	star := newFixture(t, config.Server{CORS: config.CORS{AllowedOrigins: []string{"*"}}}, nil, routes)
	none := newFixture(t, config.Server{}, nil, routes)

	tests := []struct {
		name        string
		f           *fixture
		method      string
		origin      string
		preflight   bool
		wantStatus  int
		wantOrigin  string
		wantCreds   bool
		wantMethods bool
	}{
		{name: "listed origin", f: listed, method: "GET", origin: "https://app.example.com", wantStatus: 200, wantOrigin: "https://app.example.com", wantCreds: true},
		{name: "listed origin other case", f: listed, method: "GET", origin: "https://APP.example.com", wantStatus: 200, wantOrigin: "https://APP.example.com", wantCreds: true},
		{name: "denied origin", f: listed, method: "GET", origin: "https://evil.example", wantStatus: 200},
		{name: "no origin", f: listed, method: "GET", wantStatus: 200},
		{name: "preflight listed", f: listed, method: "OPTIONS", origin: "https://app.example.com", preflight: true, wantStatus: 204, wantOrigin: "https://app.example.com", wantCreds: true, wantMethods: true},
		{name: "preflight denied", f: listed, method: "OPTIONS", origin: "https://evil.example", preflight: true, wantStatus: 405},
		{name: "star", f: star, method: "GET", origin: "https://any.example", wantStatus: 200, wantOrigin: "*"},
		{name: "star preflight", f: star, method: "OPTIONS", origin: "https://any.example", preflight: true, wantStatus: 204, wantOrigin: "*", wantMethods: true},
		{name: "empty list same origin only", f: none, method: "GET", origin: "https://app.example.com", wantStatus: 200},
		{name: "empty list preflight", f: none, method: "OPTIONS", origin: "https://app.example.com", preflight: true, wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, "/api/chat/unread", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.preflight {
				req.Header.Set("Access-Control-Request-Method", "GET")
				req.Header.Set("Access-Control-Request-Headers", "authorization")
			}
			w := tc.f.do(t, req)
			h := w.Header()
			if w.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tc.wantStatus)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Errorf("Allow-Origin = %q, want %q", got, tc.wantOrigin)
			}
			if got := h.Get("Access-Control-Allow-Credentials") == "true"; got != tc.wantCreds {
				t.Errorf("Allow-Credentials = %v, want %v", got, tc.wantCreds)
			}
			allowHeaders := h.Get("Access-Control-Allow-Headers")
			if tc.wantMethods {
				if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
					!strings.Contains(allowHeaders, "Authorization") || !strings.Contains(allowHeaders, "Content-Type") {
					t.Errorf("preflight headers: methods %q headers %q", h.Get("Access-Control-Allow-Methods"), allowHeaders)
				}
			} else if allowHeaders != "" {
				t.Errorf("unexpected Allow-Headers %q", allowHeaders)
			}
		})
	}
}

func TestCheckOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		allowed []string
		origin  string
		want    bool
	}{
		{"no origin header", nil, "", true},
		{"same origin", nil, "http://chat.example:8080", true},
		{"cross origin, empty list", nil, "https://evil.example", false},
		{"listed", []string{"https://app.example.com"}, "https://app.example.com", true},
		{"not listed", []string{"https://app.example.com"}, "https://evil.example", false},
		{"star", []string{"*"}, "https://evil.example", true},
		{"garbage", nil, "::::", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "http://chat.example:8080/ws", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if got := CheckOrigin(tc.allowed)(req); got != tc.want {
				t.Errorf("CheckOrigin = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, func(r *mux.Router) {
		api := r.PathPrefix("/api/chat").Subrouter()
		api.HandleFunc("/sessions/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }).Methods(http.MethodGet)
	})
	for _, p := range []string{"/api/chat/sessions/0193-a", "/api/chat/sessions/0193-b", "/secret/raw/path"} {
		f.do(t, httptest.NewRequest(http.MethodGet, p, nil))
	}
	f.do(t, httptest.NewRequest("BREW", "/api/chat/sessions/x", nil))

	w := f.do(t, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{
		`chat_http_requests_total{method="GET",route="/api/chat/sessions/{id}",status="204"} 2`,
		`chat_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`chat_http_requests_total{method="other",route="unmatched",status="405"} 1`,
		`chat_http_request_duration_seconds_count{method="GET",route="/api/chat/sessions/{id}"} 2`,
		"go_goroutines",
		"process_",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, leak := range []string{"0193-a", "/secret/raw/path"} {
		if strings.Contains(body, leak) {
			t.Errorf("metrics contain raw path %q", leak)
		}
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := Check{Name: "database", Fn: func(context.Context) error { return nil }}
	refused := Check{Name: "relay", Fn: func(context.Context) error { return errors.New("connection refused") }}
	panics := Check{Name: "broken", Fn: func(context.Context) error { panic("oops") }}
	hangs := Check{Name: "slow", Fn: func(ctx context.Context) error { <-ctx.Done(); time.Sleep(time.Second); return ctx.Err() }}

	tests := []struct {
		name       string
		checks     []Check
		wantStatus int
		wantChecks map[string]string
		wantDetail []string
	}{
		{name: "no checks", wantStatus: 200, wantChecks: map[string]string{}},
		{name: "all ok", checks: []Check{ok}, wantStatus: 200, wantChecks: map[string]string{"database": "ok"}},
		{name: "one failing", checks: []Check{refused, ok}, wantStatus: 503,
			wantChecks: map[string]string{"database": "ok", "relay": "connection refused"},
			wantDetail: []string{"relay: connection refused"}},
		{name: "panic and timeout", checks: []Check{ok, panics, hangs}, wantStatus: 503,
			wantDetail: []string{"broken: check panicked: oops", "slow: timed out after"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			start := time.Now()
			Readyz(tc.checks, 100*time.Millisecond).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if d := time.Since(start); d > 900*time.Millisecond {
				t.Errorf("readyz took %s; a hanging check must not hold it past its timeout", d)
			}
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			var body struct {
				Status any               `json:"status"`
				Code   string            `json:"code"`
				Detail string            `json:"detail"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if tc.wantStatus == 200 {
				if body.Status != "ready" || w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("body %s, content type %q", w.Body, w.Header().Get("Content-Type"))
				}
			} else if body.Code != "unavailable" || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("body %s, content type %q", w.Body, w.Header().Get("Content-Type"))
			}
			for k, v := range tc.wantChecks {
				if body.Checks[k] != v {
					t.Errorf("checks[%s] = %q, want %q", k, body.Checks[k], v)
				}
			}
			for _, d := range tc.wantDetail {
				if !strings.Contains(body.Detail, d) {
					t.Errorf("detail %q lacks %q", body.Detail, d)
				}
			}
		})
	}
}

func TestReadyzRoute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, []Check{{Name: "database", Fn: func(context.Context) error { return errors.New("connection refused") }}}, nil)
	w := f.do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	p := decodeProblem(t, w.Header().Get("Content-Type"), w.Body)
	if w.Code != 503 || p.Detail != "database: connection refused" {
		t.Fatalf("readyz = %d %+v", w.Code, p)
	}
}

func TestModuleWiring(t *testing.T) {
	t.Parallel()
	var srv *Server
	app := fxtest.New(t,
		fx.Supply(config.Server{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}),
		logging.Module(logging.New(config.Log{Level: "error", Format: config.LogText}, io.Discard)),
		Module,
		fx.Provide(AsCheck(func() Check { return Check{Name: "database", Fn: func(context.Context) error { return nil }} })),
		fx.Invoke(func(r *mux.Router) {
			r.HandleFunc("/api/ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pong") })
		}),
		fx.Populate(&srv),
	)
	app.RequireStart()
	defer app.RequireStop()
	for path, want := range map[string]string{"/api/ping": "pong", "/readyz": `"database":"ok"`, "/healthz": `"ok"`} {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s = %d %s", path, resp.StatusCode, b)
		}
	}
}

func TestModuleBusyPortFailsStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, nil)
	f.start(t)
	app := fx.New(
		fx.NopLogger,
		fx.Supply(config.Server{Addr: f.srv.Addr()}),
		fx.Provide(discardLogger),
		Module,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := app.Start(ctx)
	if err == nil {
		_ = app.Stop(ctx)
		t.Fatal("app started on a busy port")
	}
	if !strings.Contains(err.Error(), "server.addr") {
		t.Errorf("error %q does not name server.addr", err)
	}
}

// TestReadBodyDeadline: a client that sends its headers and then trickles
// (or stops sending) its body gets an error once the timeout passes, and
// the handler's work after the body is not cut short.
func TestReadBodyDeadline(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := ReadBody(w, r, 1<<20, 200*time.Millisecond)
		got <- err
		w.WriteHeader(http.StatusRequestTimeout)
	}))
	defer hs.Close()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body read is still waiting for the rest of the body")
	}

	// A whole body within the time is read, and the deadline is lifted.
	hs2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := ReadBody(w, r, 1<<20, 100*time.Millisecond)
		if err != nil || string(b) != "hello" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		time.Sleep(300 * time.Millisecond) // past the read deadline: the request must not be cancelled
		if r.Context().Err() != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs2.Close()
	resp, err := http.Post(hs2.URL, "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
