package flairbit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
	"github.com/chat-service/chat/plugins/flairbit"
)

// section is a profiles.flairbit section for the fake at baseURL, as chat.yaml holds it.
func section(t *testing.T, baseURL string) map[string]any {
	return map[string]any{
		"base_url": baseURL,
		"service_auth": map[string]any{
			"private_key_file": keyFile(t, testKey()),
			"key_id":           "chat-1",
			"issuer":           "chat-service",
			"audience":         "flairbit",
			"ttl":              "5m",
		},
	}
}

func profilesCfg(sec map[string]any) config.Profiles {
	cfg := profilestest.TestConfig()
	cfg.Provider = flairbit.Name
	cfg.Plugins = map[string]any{flairbit.Name: sec}
	return cfg
}

func build(t *testing.T, sec map[string]any, log *slog.Logger) (*flairbit.Client, error) {
	t.Helper()
	p, err := profiles.Build(profilesCfg(sec), profiles.Env{Log: log, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	c := p.(*flairbit.Client)
	t.Cleanup(func() { _ = c.Close() }) // nothing to report
	return c, nil
}

func mustBuild(t *testing.T, sec map[string]any) *flairbit.Client {
	t.Helper()
	c, err := build(t, sec, nil)
	if err != nil {
		t.Fatalf("build flairbit: %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	f, srv := newFakeFlairBit(t)
	profilestest.Run(t, mustBuild(t, section(t, srv.URL)))
	if f.Rejected() != 0 {
		t.Errorf("fake rejected %d tokens", f.Rejected())
	}
}

func TestRequests(t *testing.T) {
	f, srv := newFakeFlairBit(t)
	c := mustBuild(t, section(t, srv.URL+"/")) // a trailing slash is fine
	if _, err := c.Profiles(t.Context(), []string{"alice", "dave@example.test", "a,b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CanChat(t.Context(), "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %d, want 2", len(reqs))
	}
	if got := reqs[0].URL.Path + "?" + reqs[0].URL.RawQuery; got != "/internal/chat-service/profiles?ids=alice,dave%40example.test" {
		t.Errorf("profiles request = %s", got)
	}
	if got := reqs[1].URL.Path + "?" + reqs[1].URL.RawQuery; got != "/internal/chat-service/can-chat?from=alice&to=bob" {
		t.Errorf("can-chat request = %s", got)
	}
	for _, r := range reqs {
		if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/json" {
			t.Errorf("%s %s Accept=%q", r.Method, r.URL.Path, r.Header.Get("Accept"))
		}
	}
}

func TestLargeBatchesAreSplit(t *testing.T) {
	f, srv := newFakeFlairBit(t)
	c := mustBuild(t, section(t, srv.URL))
	ids := []string{"alice"}
	for i := range 2 * flairbit.MaxIDsPerRequest {
		ids = append(ids, fmt.Sprintf("user-%03d", i))
	}
	got, err := c.Profiles(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if got["alice"] != profilestest.Users[0] || len(got) != 1 {
		t.Errorf("Profiles = %v", got)
	}
	if n := len(f.Requests()); n != 3 {
		t.Errorf("requests = %d for %d ids, want 3", n, len(ids))
	}
}

func TestServiceJWT(t *testing.T) {
	f, srv := newFakeFlairBit(t)
	c := mustBuild(t, section(t, srv.URL))
	for range 3 {
		if _, err := c.Profiles(t.Context(), []string{"alice"}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := f.Tokens()
	if len(tokens) != 3 || tokens[0] != tokens[1] || tokens[1] != tokens[2] {
		t.Fatalf("tokens = %d, want 3 identical (reused until near expiry)", len(tokens))
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(tokens[0], &claims, func(*jwt.Token) (any, error) { return &testKey().PublicKey, nil })
	if err != nil {
		t.Fatal(err)
	}
	if tok.Method.Alg() != "RS256" || tok.Header["kid"] != "chat-1" {
		t.Errorf("header = %v", tok.Header)
	}
	if claims.Issuer != "chat-service" || claims.Subject != "chat-service" || len(claims.Audience) != 1 || claims.Audience[0] != "flairbit" {
		t.Errorf("claims = %+v", claims)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life != 5*time.Minute {
		t.Errorf("exp - iat = %s, want the 5m ttl", life)
	}
	if d := time.Since(claims.IssuedAt.Time); d < -time.Second || d > time.Minute {
		t.Errorf("iat is %s ago", d)
	}
	if claims.ID == "" {
		t.Error("no jti")
	}
}

func TestRejectedServiceJWT(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(t *testing.T, sec map[string]any)
	}{
		{"wrong audience", func(_ *testing.T, sec map[string]any) { auth(sec)["audience"] = "flairbit-staging" }},
		{"wrong issuer", func(_ *testing.T, sec map[string]any) { auth(sec)["issuer"] = "someone-else" }},
		{"unknown kid", func(_ *testing.T, sec map[string]any) { auth(sec)["key_id"] = "chat-2" }},
		{"wrong key", func(t *testing.T, sec map[string]any) { auth(sec)["private_key_file"] = keyFile(t, otherKey()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeFlairBit(t)
			sec := section(t, srv.URL)
			tc.mod(t, sec)
			c := mustBuild(t, sec)
			_, err := c.Profiles(t.Context(), []string{"alice"})
			if err == nil || !strings.Contains(err.Error(), "status 401") || !strings.Contains(err.Error(), "service_auth") {
				t.Fatalf("Profiles error = %v, want a 401 pointing at service_auth", err)
			}
			if _, err := c.CanChat(t.Context(), "alice", "bob"); err == nil {
				t.Fatal("CanChat: no error for a rejected token")
			}
			if f.Rejected() != 2 {
				t.Errorf("fake rejected %d requests, want 2", f.Rejected())
			}
		})
	}
}

func auth(sec map[string]any) map[string]any { return sec["service_auth"].(map[string]any) }

func TestBadResponses(t *testing.T) {
	big := `{"profiles":[{"userId":"alice","displayName":"` + strings.Repeat("a", flairbit.MaxBodyBytes) + `"}]}`
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		canChat bool
		want    string // "" = no error
		check   func(t *testing.T, got map[string]profiles.Profile)
	}{
		{name: "server error", status: 500, body: `{"error":"boom"}`, want: `status 500: {"error":"boom"}`},
		{name: "bad gateway, html", status: 502, body: "<html>\n<b>bad</b></html>", want: "status 502: <html> <b>bad</b></html>"},
		{name: "not json", status: 200, body: `profiles: alice`, want: "decode response"},
		{name: "wrong shape", status: 200, body: `{"profiles":{"alice":{}}}`, want: "decode response"},
		{name: "no profiles list", status: 200, body: `{}`, want: `no "profiles" list`},
		{name: "oversized", status: 200, body: big, want: "larger than 1048576 bytes"},
		{name: "missing users are absent", status: 200, body: `{"profiles":[{"userId":"alice","displayName":"Alice"}]}`,
			check: func(t *testing.T, got map[string]profiles.Profile) {
				if len(got) != 1 || got["alice"].DisplayName != "Alice" {
					t.Errorf("Profiles = %v, want alice only", got)
				}
			}},
		{name: "unasked users ignored, unknown fields tolerated", status: 200,
			body: `{"profiles":[{"userId":"zed","displayName":"Z"},{"userId":"bob","displayName":"Bob","pronouns":"he"}],"next":null}`,
			check: func(t *testing.T, got map[string]profiles.Profile) {
				if len(got) != 1 || got["bob"].DisplayName != "Bob" {
					t.Errorf("Profiles = %v, want bob only", got)
				}
			}},
		{name: "can-chat without allowed", canChat: true, status: 200, body: `{"allow":true}`, want: `no "allowed" field`},
		{name: "can-chat 503", canChat: true, status: 503, body: ``, want: "status 503: (empty body)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeFlairBit(t)
			f.setHandler(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body)) // the client may stop reading early
			})
			c := mustBuild(t, section(t, srv.URL))
			var err error
			var got map[string]profiles.Profile
			if tc.canChat {
				_, err = c.CanChat(t.Context(), "alice", "bob")
			} else {
				got, err = c.Profiles(t.Context(), []string{"alice", "bob"})
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("error spans lines: %q", err)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func TestTokenNeverLogged(t *testing.T) {
	f, srv := newFakeFlairBit(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))

	cfg := profilesCfg(section(t, srv.URL))
	dir, err := profiles.New(cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	dir.Lookup(t.Context(), []string{"alice"})
	f.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = w.Write([]byte(r.Header.Get("Authorization"))) // a server that echoes the token
	})
	dir.Lookup(t.Context(), []string{"bob"})
	dir.CanChat(t.Context(), "alice", "bob")

	tokens := f.Tokens()
	if len(tokens) == 0 {
		t.Fatal("no tokens seen")
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "profile provider call failed") || !strings.Contains(out, "flairbit call") {
		t.Fatalf("expected failure and call log lines, got:\n%s", out)
	}
	// The echoed body is cut to 200 bytes, well inside a token; a whole one must never appear.
	for _, tok := range tokens {
		if strings.Contains(out, tok) {
			t.Fatalf("a service JWT appears in the logs:\n%s", out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

func TestDirectoryOverFlairBit(t *testing.T) {
	f, srv := newFakeFlairBit(t)
	cfg := profilesCfg(section(t, srv.URL))
	cfg.Timeout = 300 * time.Millisecond
	cfg.Breaker = config.Breaker{MaxFailures: 2, OpenTimeout: time.Second}
	dir, err := profiles.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if got := dir.Lookup(t.Context(), []string{"alice"}); got["alice"] != profilestest.Users[0] {
		t.Fatalf("Lookup = %v", got)
	}
	if dir.CanChat(t.Context(), "bob", "mallory") {
		t.Fatal("CanChat(bob, mallory) = true")
	}

	// FlairBit hangs: lookups stay fast, the breaker opens, calls stop.
	release := make(chan struct{})
	f.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	for _, id := range []string{"bob", "carol.3", "mallory"} {
		// A caller's deadline bounds the wait too (the fetch goes on).
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		start := time.Now()
		got := dir.Lookup(ctx, []string{"alice", id})
		cancel()
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("Lookup with FlairBit hung took %s", d)
		}
		if got["alice"] != profilestest.Users[0] {
			t.Errorf("Lookup = %v, want cached alice", got)
		}
	}
	deadline := time.After(5 * time.Second)
	for dir.Breaker().State() != "open" {
		select {
		case <-deadline:
			t.Fatalf("breaker %s, want open", dir.Breaker().State())
		case <-time.After(10 * time.Millisecond):
		}
	}
	n := len(f.Requests())
	start := time.Now()
	dir.Lookup(t.Context(), []string{"dave@example.test"})
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Lookup with the breaker open took %s", d)
	}
	if len(f.Requests()) != n {
		t.Error("breaker open: FlairBit was called")
	}

	// FlairBit is back: the half-open probe closes the breaker.
	f.setHandler(nil)
	deadline = time.After(5 * time.Second)
	for dir.Lookup(t.Context(), []string{"bob"})["bob"] != profilestest.Users[1] {
		select {
		case <-deadline:
			t.Fatalf("no recovery; breaker %s", dir.Breaker().State())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if s := dir.Breaker().State(); s != "closed" {
		t.Errorf("breaker %s after recovery, want closed", s)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(t *testing.T, sec map[string]any)
		want string // "" = valid
	}{
		{"valid", func(*testing.T, map[string]any) {}, ""},
		{"pkcs8 rsa key", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = writePEM(t, "PRIVATE KEY", rsaPKCS8)
		}, ""},
		{"defaults", func(_ *testing.T, s map[string]any) {
			delete(auth(s), "issuer")
			delete(auth(s), "audience")
			delete(auth(s), "ttl")
		}, ""},
		{"empty base_url", func(_ *testing.T, s map[string]any) { s["base_url"] = "" }, "profiles.flairbit.base_url: required"},
		{"no section", func(_ *testing.T, s map[string]any) { clear(s) }, "profiles.flairbit.base_url: required"},
		{"base_url scheme", func(_ *testing.T, s map[string]any) { s["base_url"] = "flairbit.internal" }, "profiles.flairbit.base_url: want http(s)://"},
		{"base_url query", func(_ *testing.T, s map[string]any) { s["base_url"] = "https://f.test/?x=1" }, "profiles.flairbit.base_url: want http(s)://"},
		{"unknown key", func(_ *testing.T, s map[string]any) { s["timeout"] = "1s" }, "profiles.flairbit.timeout: unknown key"},
		{"unknown auth key", func(_ *testing.T, s map[string]any) { auth(s)["kid"] = "x" }, "profiles.flairbit.service_auth.kid: unknown key"},
		{"bad ttl", func(_ *testing.T, s map[string]any) { auth(s)["ttl"] = "forever" }, "profiles.flairbit.service_auth.ttl: "},
		{"ttl too long", func(_ *testing.T, s map[string]any) { auth(s)["ttl"] = "24h" }, "profiles.flairbit.service_auth.ttl: want between 10s and 1h0m0s, got 24h0m0s"},
		{"no key file", func(_ *testing.T, s map[string]any) { auth(s)["private_key_file"] = "" }, "profiles.flairbit.service_auth.private_key_file: required"},
		{"missing key file", func(_ *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = filepath.Join(dir, "missing.pem")
		}, "profiles.flairbit.service_auth.private_key_file: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{"not PEM", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = writeFileT(t, "not a key")
		}, "profiles.flairbit.service_auth.private_key_file: " + "%s holds no PEM block"},
		{"corrupt PEM", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = writePEM(t, "RSA PRIVATE KEY", []byte("garbage"))
		}, "profiles.flairbit.service_auth.private_key_file: parse "},
		{"public key", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = writePEM(t, "PUBLIC KEY", []byte("x"))
		}, `holds a PEM block of type "PUBLIC KEY"`},
		{"EC key", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = writePEM(t, "EC PRIVATE KEY", ecDER)
		}, "holds an EC key; service JWTs are RS256 and need an RSA key"},
		{"EC key in PKCS#8", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = writePEM(t, "PRIVATE KEY", ecPKCS8)
		}, "holds a *ecdsa.PrivateKey; service JWTs are RS256 and need an RSA key"},
		{"small RSA key", func(t *testing.T, s map[string]any) {
			auth(s)["private_key_file"] = keyFile(t, mustKey(1024))
		}, "holds a 1024-bit RSA key, want at least 2048 bits"},
		{"no key_id", func(_ *testing.T, s map[string]any) { auth(s)["key_id"] = "" }, "profiles.flairbit.service_auth.key_id: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := section(t, "https://flairbit.test")
			tc.mod(t, sec)
			_, err := build(t, sec, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case strings.Contains(tc.want, "%s"):
				path := auth(sec)["private_key_file"].(string)
				if want := strings.Replace(tc.want, "%s", path, 1); err.Error() != want {
					t.Fatalf("error = %v\nwant  %s", err, want)
				}
			case !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "profiles.flairbit."):
				t.Fatalf("error = %v\nwant one naming the key and containing %q", err, tc.want)
			}
		})
	}
}

func writeFileT(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file.pem")
	if err := writeBytes(path, []byte(content)); err != nil {
		t.Fatal(err)
	}
	return path
}
