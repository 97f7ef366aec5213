package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/mux"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
)

// devRouter is the shared router with the issuer mounted, as the module does.
func devRouter(t *testing.T, cfg config.Auth) (*mux.Router, *Verifier) {
	t.Helper()
	v := newTestVerifier(t, cfg)
	d, err := NewDevIssuer(DevIssuerParams{Cfg: cfg, Verifier: v, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := httpserver.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	RegisterDevRoutes(r, d)
	return r, v
}

func devConfig(t *testing.T) config.Auth {
	cfg := testConfig(t)
	cfg.Dev = config.Dev{Enabled: true, TokenTTL: 2 * time.Hour}
	return cfg
}

func postToken(h http.Handler, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, DevTokenPath, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestDevToken(t *testing.T) {
	t.Parallel()
	withIssAud := devConfig(t)
	randomSecret := config.Auth{Dev: config.Dev{Enabled: true, TokenTTL: time.Hour}}
	for name, cfg := range map[string]config.Auth{"configured secret, iss and aud": withIssAud, "random per-process secret": randomSecret} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, v := devRouter(t, cfg)
			before := time.Now()
			w := postToken(r, "application/json; charset=utf-8", `{"userId":"alice@example.com"}`)
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var body struct {
				Token     string `json:"token"`
				ExpiresAt string `json:"expiresAt"`
			}
			dec := json.NewDecoder(w.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatal(err)
			}
			exp, err := time.Parse(time.RFC3339, body.ExpiresAt)
			if err != nil || !strings.HasSuffix(body.ExpiresAt, ".000Z") || len(body.ExpiresAt) != len("2006-01-02T15:04:05.000Z") {
				t.Fatalf("expiresAt %q is not RFC 3339 with milliseconds in UTC (%v)", body.ExpiresAt, err)
			}
			ttl := cfg.Dev.TokenTTL
			if exp.Before(before.Add(ttl).Add(-time.Second)) || exp.After(time.Now().Add(ttl)) {
				t.Errorf("expiresAt %s is not about now + %s", exp, ttl)
			}
			p, err := v.Verify(body.Token)
			if err != nil {
				t.Fatalf("the verifier rejects its own dev token: %v", err)
			}
			if p.UserID != "alice@example.com" || !p.ExpiresAt.Equal(exp) {
				t.Errorf("principal = %+v, want alice@example.com until %s", p, exp)
			}
		})
	}
}

func TestDevTokenRandomSecretIsPerProcess(t *testing.T) {
	t.Parallel()
	cfg := config.Auth{Dev: config.Dev{Enabled: true, TokenTTL: time.Hour}}
	r, _ := devRouter(t, cfg)
	w := postToken(r, "application/json", `{"userId":"alice"}`)
	var body struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	other := newTestVerifier(t, cfg) // another process, another secret
	if _, err := other.Verify(body.Token); err == nil {
		t.Fatal("a token signed with one random secret verified with another")
	}
	strict := newTestVerifier(t, testConfig(t)) // the real secret, iss and aud
	if _, err := strict.Verify(body.Token); err == nil {
		t.Fatal("a random-secret dev token verified against the configured secret")
	}
}

func TestDevTokenErrors(t *testing.T) {
	t.Parallel()
	r, _ := devRouter(t, devConfig(t))
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		code        string
	}{
		{name: "user id with a space", body: `{"userId":"al ice"}`, status: 400, code: "invalid_user_id"},
		{name: "empty user id", body: `{"userId":""}`, status: 400, code: "invalid_user_id"},
		{name: "user id too long", body: `{"userId":"` + strings.Repeat("a", 129) + `"}`, status: 400, code: "invalid_user_id"},
		{name: "missing user id", body: `{}`, status: 400, code: "invalid_user_id"},
		{name: "null user id", body: `{"userId":null}`, status: 400, code: "invalid_user_id"},
		{name: "numeric user id", body: `{"userId":42}`, status: 400, code: "invalid_user_id"},
		{name: "malformed JSON", body: `{"userId":`, status: 400, code: "invalid_json"},
		{name: "not an object", body: `"alice"`, status: 400, code: "invalid_json"},
		{name: "trailing data", body: `{"userId":"alice"} {}`, status: 400, code: "invalid_json"},
		{name: "invalid UTF-8", body: "{\"userId\":\"al\xffice\"}", status: 400, code: "invalid_json"},
		{name: "empty body", body: ``, status: 400, code: "invalid_json"},
		{name: "unknown field", body: `{"userId":"alice","admin":true}`, status: 400, code: "unknown_field"},
		{name: "text/plain", contentType: "text/plain", body: `{"userId":"alice"}`, status: 415, code: "unsupported_media_type"},
		{name: "no content type", contentType: "-", body: `{"userId":"alice"}`, status: 415, code: "unsupported_media_type"},
		{name: "latin-1 JSON", contentType: "application/json; charset=iso-8859-1", body: `{"userId":"alice"}`, status: 415, code: "unsupported_media_type"},
		{name: "too large", body: `{"userId":"` + strings.Repeat("a", maxDevBody) + `"}`, status: 413, code: "payload_too_large"},
		{name: "GET", method: http.MethodGet, status: 405, code: "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, DevTokenPath, strings.NewReader(tc.body))
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
				t.Fatalf("Content-Type = %q", ct)
			}
			var p problem.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Code != tc.code || p.Status != tc.status {
				t.Errorf("problem = %+v, want %d %s", p, tc.status, tc.code)
			}
		})
	}
}

func TestNewDevIssuerRefusesWhenDisabled(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	if _, err := NewDevIssuer(DevIssuerParams{Cfg: cfg, Verifier: newTestVerifier(t, cfg), Log: discard()}); err == nil {
		t.Fatal("NewDevIssuer built an issuer with auth.dev.enabled false")
	}
	pkOnly := config.Auth{JWT: config.JWT{PublicKeys: cfg.JWT.PublicKeys}}
	v := newTestVerifier(t, pkOnly)
	pkOnly.Dev.Enabled = true // the verifier was built without the dev secret
	if _, err := NewDevIssuer(DevIssuerParams{Cfg: pkOnly, Verifier: v, Log: discard()}); err == nil {
		t.Fatal("NewDevIssuer built an issuer without an HMAC secret")
	}
}

// TestModule wires auth with httpserver as the platform does: the dev route
// exists (with a loud warning) only when auth.dev.enabled.
func TestModule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		enabled    bool
		wantStatus int
	}{
		{name: "enabled", enabled: true, wantStatus: http.StatusOK},
		{name: "disabled", enabled: false, wantStatus: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Dev = config.Dev{Enabled: tc.enabled, TokenTTL: time.Hour}
			var logs safeBuffer
			var srv *httpserver.Server
			var v *Verifier
			app := fxtest.New(t,
				fx.NopLogger,
				fx.Supply(cfg, config.Server{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}),
				fx.Provide(func() *slog.Logger { return slog.New(slog.NewTextHandler(&logs, nil)) }),
				httpserver.Module,
				Module,
				fx.Populate(&srv, &v),
			)
			app.RequireStart()
			defer app.RequireStop()

			resp, err := http.Post("http://"+srv.Addr()+DevTokenPath, "application/json", strings.NewReader(`{"userId":"alice"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			warned := strings.Contains(logs.String(), "DEVELOPMENT TOKEN ISSUER ENABLED")
			if warned != tc.enabled {
				t.Errorf("warning logged = %v, want %v", warned, tc.enabled)
			}
			if !tc.enabled {
				if code := decodeCode(t, body); code != "not_found" {
					t.Errorf("code = %q, want not_found", code)
				}
				return
			}
			var tok struct{ Token string }
			if err := json.Unmarshal(body, &tok); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(tok.Token); err != nil {
				t.Fatalf("provided verifier rejects the dev token: %v", err)
			}
		})
	}
}

// TestMiddlewareLogsUserID runs the middleware inside the server chain: the
// access log names the authenticated user.
func TestMiddlewareLogsUserID(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, testConfig(t))
	var logs safeBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r, _ := httpserver.NewRouter()
	api := r.PathPrefix("/api/chat").Subrouter()
	api.Use(v.Middleware)
	api.HandleFunc("/unread", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv, err := httpserver.New(httpserver.ServerParams{Router: r, Log: log, Registerer: nil})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/chat/unread", nil)
	req.Header.Set("Authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims("carol")))
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req.WithContext(context.Background()))
	if w.Code != http.StatusNoContent {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "user_id=carol") || strings.Contains(logs.String(), "eyJ") {
		t.Fatalf("access log:\n%s", logs.String())
	}
}

func decodeCode(t *testing.T, body []byte) string {
	t.Helper()
	var p problem.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return p.Code
}

// safeBuffer is a log sink safe for concurrent writes and reads.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDevTokenRefusedOnceDevIsOff: a token the development issuer minted
// stops verifying when the same deployment runs with auth.dev.enabled
// false, and a token that carries the dev mark without the development key
// (signed with the real secret) is refused with dev on or off.
func TestDevTokenRefusedOnceDevIsOff(t *testing.T) {
	t.Parallel()
	on := devConfig(t)
	r, v := devRouter(t, on)
	w := postToken(r, "application/json", `{"userId":"alice"}`)
	var body struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if _, err := v.Verify(body.Token); err != nil {
		t.Fatalf("dev on: %v", err)
	}
	again := newTestVerifier(t, on) // another instance of the same setup agrees
	if _, err := again.Verify(body.Token); err != nil {
		t.Fatalf("dev on, second verifier: %v", err)
	}
	off := on
	off.Dev.Enabled = false
	offV := newTestVerifier(t, off)
	if _, err := offV.Verify(body.Token); !errors.Is(err, ErrDevToken) {
		t.Fatalf("dev off accepted the dev token or failed otherwise: %v", err)
	}
	marked := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims("alice"), jwt.MapClaims{"dev": true}))
	for name, verifier := range map[string]*Verifier{"dev on": v, "dev off": offV} {
		if _, err := verifier.Verify(marked); !errors.Is(err, ErrDevToken) {
			t.Errorf("%s: a dev-marked token signed with hmac_secret: %v", name, err)
		}
	}
	// The real secret's own tokens keep working either way.
	plain := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims("alice"))
	if _, err := offV.Verify(plain); err != nil {
		t.Fatalf("dev off refuses a normal token: %v", err)
	}
}
