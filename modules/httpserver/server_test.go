package httpserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/chat-service/chat/config"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, func(r *mux.Router) {
		r.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, RequestID(r.Context())) })
	})
	tests := []struct {
		name     string
		incoming string
		wantEcho bool
	}{
		{name: "absent is generated"},
		{name: "valid is echoed", incoming: "req-42.abc:1", wantEcho: true},
		{name: "uuid is echoed", incoming: "0193a1f2-7b3c-7d4e-8f90-123456789abc", wantEcho: true},
		{name: "spaces are replaced", incoming: "a b"},
		{name: "too long is replaced", incoming: strings.Repeat("x", 129)},
		{name: "log injection is replaced", incoming: "x\" level=ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/id", nil)
			if tc.incoming != "" {
				req.Header.Set(RequestIDHeader, tc.incoming)
			}
			w := f.do(t, req)
			got := w.Header().Get(RequestIDHeader)
			if got == "" || !validRequestID.MatchString(got) {
				t.Fatalf("X-Request-ID = %q, want a valid id", got)
			}
			if tc.wantEcho != (got == tc.incoming) {
				t.Errorf("X-Request-ID = %q, incoming %q, want echo %v", got, tc.incoming, tc.wantEcho)
			}
			if body := w.Body.String(); body != got {
				t.Errorf("RequestID(ctx) = %q, header %q", body, got)
			}
		})
	}
}

func TestAccessLogRedactsTokens(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	f := newFixture(t, config.Server{}, nil, func(r *mux.Router) {
		r.HandleFunc("/ws/{server}/{session}/websocket", func(w http.ResponseWriter, r *http.Request) {
			SetUserID(r.Context(), "alice")
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "hello")
		})
	})
	req := httptest.NewRequest(http.MethodGet, "/ws/123/abc/websocket?access_token="+jwt+"&x=1&other="+jwt+"&Password=hunter2", nil)
	req.Header.Set(RequestIDHeader, "rid-1")
	f.do(t, req)

	out := f.logs.String()
	for _, secret := range []string{jwt, "hunter2", "c2lnbmF0dXJl"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains secret %q:\n%s", secret, out)
		}
	}
	var line map[string]any
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "http request" {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no access log line:\n%s", out)
	}
	want := map[string]any{
		"method":     "GET",
		"path":       "/ws/123/abc/websocket?access_token=REDACTED&x=1&other=REDACTED&Password=REDACTED",
		"route":      "/ws/{server}/{session}/websocket",
		"status":     float64(http.StatusTeapot),
		"bytes":      float64(5),
		"request_id": "rid-1",
		"user_id":    "alice",
		"level":      "INFO",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Errorf("log has no duration: %v", line)
	}
}

func TestRedactedURI(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"no query", "/api/chat/sessions", "/api/chat/sessions"},
		{"plain query kept", "/x?limit=5&cursor=abc", "/x?limit=5&cursor=abc"},
		{"access_token", "/ws?access_token=abc", "/ws?access_token=REDACTED"},
		{"encoded key", "/ws?access%5Ftoken=abc", "/ws?access%5Ftoken=REDACTED"},
		{"jwt under any name", "/x?q=eyJa.eyJb.sig", "/x?q=REDACTED"},
		{"bearer value", "/x?h=Bearer%20abc", "/x?h=REDACTED"},
		{"api key", "/x?api_key=1&id=2", "/x?api_key=REDACTED&id=2"},
		{"key without value", "/x?token", "/x?token=REDACTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, tc.in, nil)
			if got := RedactedURI(req.URL); got != tc.want {
				t.Errorf("RedactedURI(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, func(r *mux.Router) {
		r.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	})
	base := f.start(t)

	resp, err := http.Get(base + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	p := decodeProblem(t, resp.Header.Get("Content-Type"), resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || p.Code != "internal" || p.Status != 500 {
		t.Fatalf("got %d %+v, want 500 internal", resp.StatusCode, p)
	}
	if !strings.Contains(p.Detail, resp.Header.Get(RequestIDHeader)) {
		t.Errorf("detail %q does not name request id %q", p.Detail, resp.Header.Get(RequestIDHeader))
	}

	resp, err = http.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after panic = %d", resp.StatusCode)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "kaboom") {
		t.Errorf("panic not logged:\n%s", logs)
	}
	if !strings.Contains(logs, `"status":500`) {
		t.Errorf("access log did not record the 500:\n%s", logs)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, func(r *mux.Router) {
		api := r.PathPrefix("/api/chat").Subrouter()
		api.HandleFunc("/sessions", func(http.ResponseWriter, *http.Request) {}).Methods(http.MethodPost)
	})
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown route", http.MethodGet, "/nope", 404, "not_found"},
		{"unknown in subrouter", http.MethodGet, "/api/chat/nope", 404, "not_found"},
		{"wrong method", http.MethodDelete, "/healthz", 405, "method_not_allowed"},
		{"wrong method in subrouter", http.MethodGet, "/api/chat/sessions", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := f.do(t, httptest.NewRequest(tc.method, tc.path, nil))
			p := decodeProblem(t, w.Header().Get("Content-Type"), w.Body)
			if w.Code != tc.status || p.Code != tc.code {
				t.Errorf("got %d %q, want %d %q", w.Code, p.Code, tc.status, tc.code)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, nil)
	w := f.do(t, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("healthz = %d %s", w.Code, w.Body)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	f := newFixture(t, config.Server{ShutdownTimeout: 5 * time.Second}, nil, func(r *mux.Router) {
		r.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		})
	})
	if err := f.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + f.srv.Addr()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	waitFor(t, entered, "the request to reach the handler")

	stopped := make(chan error, 1)
	go func() { stopped <- f.srv.Stop(context.Background()) }()
	waitFor(t, f.srv.Done(), "the listener to close")
	if _, err := net.DialTimeout("tcp", f.srv.Addr(), time.Second); err == nil {
		t.Error("new connections still accepted during shutdown")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v before the in-flight request finished", err)
	default:
	}

	close(release)
	select {
	case r := <-got:
		if r.err != nil || r.status != 200 || r.body != "done" {
			t.Fatalf("in-flight request: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request never finished")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop never returned")
	}
}

func TestShutdownTimeoutForcesClose(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	f := newFixture(t, config.Server{ShutdownTimeout: 50 * time.Millisecond}, nil, func(r *mux.Router) {
		r.HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
		})
	})
	if err := f.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get("http://" + f.srv.Addr() + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, entered, "the request to reach the handler")
	err := f.srv.Stop(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want a deadline error", err)
	}
}

func TestBusyPortFailsStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := newFixture(t, config.Server{Addr: ln.Addr().String()}, nil, nil)
	err = f.srv.Start(context.Background())
	if err == nil {
		_ = f.srv.Stop(context.Background())
		t.Fatal("Start on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), "server.addr") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q should name server.addr and the address", err)
	}
}

func TestStartTwiceFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, config.Server{}, nil, nil)
	f.start(t)
	if err := f.srv.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile := writeSelfSigned(t)
	f := newFixture(t, config.Server{TLS: config.TLS{CertFile: certFile, KeyFile: keyFile}}, nil, nil)
	f.start(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test certificate
	resp, err := client.Get("https://" + f.srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("status %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
}

func TestTLSBadCertFailsStart(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, config.Server{TLS: config.TLS{CertFile: bad, KeyFile: bad}}, nil, nil)
	err := f.srv.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "server.tls") {
		t.Fatalf("Start = %v, want an error naming server.tls", err)
	}
}

func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
