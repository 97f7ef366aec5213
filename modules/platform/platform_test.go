package platform_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
	"github.com/chat-service/chat/modules/store/storetest"
)

// loadSample reads testdata/<name>.yaml over the embedded defaults, the way
// cmd/chat reads chat.yaml, with -set style overrides for what a test owns.
func loadSample(t *testing.T, name string, set ...string) config.Config {
	t.Helper()
	db := storetest.NewSQLite(t)
	set = append([]string{"storage.dsn=" + db.DSN}, set...)
	cfg, err := config.Load(config.Source{File: filepath.Join("testdata", name+".yaml"), FileRequired: true, Env: []string{}, Set: set})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return cfg
}

// senderName sends a message as alice and returns the display name the
// configured profile provider gave her ("" when none did).
func senderName(t *testing.T, a *platformtest.App) string {
	t.Helper()
	alice := platformtest.Token(t, "alice")
	res := a.Do("POST", "/api/chat/sessions", alice, `{"participants":["bob"]}`)
	var s chat.Session
	res.JSON(t, &s)
	res = a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", alice, `{"content":"hi"}`)
	if res.Status != http.StatusCreated {
		t.Fatalf("send: %d %s", res.Status, res.Body)
	}
	var m chat.Message
	res.JSON(t, &m)
	if m.Sender == nil {
		return ""
	}
	return m.Sender.DisplayName
}

func writeKey(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "service.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeFlairBit answers the profiles endpoint with "<id> from FlairBit", or
// hangs when hang is set.
func fakeFlairBit(t *testing.T, hang *atomic.Bool) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.Error(w, "no service token", http.StatusUnauthorized)
			return
		}
		if hang != nil && hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		switch r.URL.Path {
		case "/internal/chat-service/profiles":
			type p struct {
				UserID      string `json:"userId"`
				DisplayName string `json:"displayName"`
				AvatarURL   string `json:"avatarUrl"`
			}
			var out struct {
				Profiles []p `json:"profiles"`
			}
			for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
				out.Profiles = append(out.Profiles, p{UserID: id, DisplayName: id + " from FlairBit"})
			}
			_ = json.NewEncoder(w).Encode(out)
		case "/internal/chat-service/can-chat":
			_, _ = w.Write([]byte(`{"allowed":true}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

// TestProviderIsChosenByConfig switches profiles.provider in chat.yaml and
// sees a different source enrich the same user, with no code change.
func TestProviderIsChosenByConfig(t *testing.T) {
	t.Run("stub", func(t *testing.T) {
		a := platformtest.Start(t, loadSample(t, "stub"))
		if got := senderName(t, a); got != "Alice from stub" {
			t.Fatalf("sender %q", got)
		}
	})
	t.Run("jsonfile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "profiles.json")
		if err := os.WriteFile(path, []byte(`{"profiles":[{"userId":"alice","displayName":"Alice from file"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		a := platformtest.Start(t, loadSample(t, "jsonfile", "profiles.jsonfile.path="+path))
		if got := senderName(t, a); got != "Alice from file" {
			t.Fatalf("sender %q", got)
		}
	})
	t.Run("flairbit", func(t *testing.T) {
		fb := fakeFlairBit(t, nil)
		a := platformtest.Start(t, loadSample(t, "flairbit",
			"profiles.flairbit.base_url="+fb.URL, "profiles.flairbit.service_auth.private_key_file="+writeKey(t)))
		if got := senderName(t, a); got != "alice from FlairBit" {
			t.Fatalf("sender %q", got)
		}
	})
}

// TestFlairBitDownDoesNotStopChat: with FlairBit hanging, sends still
// succeed, without a sender profile, and do not each wait for the
// provider's timeout (1 s in the sample): 20 sends take far less than 20 s.
func TestFlairBitDownDoesNotStopChat(t *testing.T) {
	var hang atomic.Bool
	fb := fakeFlairBit(t, &hang)
	a := platformtest.Start(t, loadSample(t, "flairbit",
		"profiles.flairbit.base_url="+fb.URL, "profiles.flairbit.service_auth.private_key_file="+writeKey(t)))
	alice := platformtest.Token(t, "alice")
	res := a.Do("POST", "/api/chat/sessions", alice, `{"participants":["bob"],"type":"group"}`)
	var s chat.Session
	res.JSON(t, &s)

	hang.Store(true)
	start := time.Now()
	for i := 0; i < 20; i++ {
		// A failed lookup caches nothing: each send finds alice cold until the breaker opens.
		res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", alice, `{"content":"still here"}`)
		if res.Status != http.StatusCreated {
			t.Fatalf("send %d with FlairBit down: %d %s", i, res.Status, res.Body)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("20 sends took %s: sends wait on the hanging provider", took)
	}
	// A new pairing cannot be checked: refused by default (fail closed).
	res = a.Do("POST", "/api/chat/sessions", alice, `{"participants":["carol"]}`)
	if res.Status != http.StatusForbidden || res.Problem(t) != "chat_not_allowed" {
		t.Fatalf("new pairing with FlairBit down: %d %s", res.Status, res.Body)
	}
}

func TestUnknownProviderFailsListingNames(t *testing.T) {
	cfg := loadSample(t, "stub", "profiles.provider=ldap")
	_, err := platform.Options(cfg)
	if err == nil {
		t.Fatal("an unknown provider was accepted")
	}
	for _, name := range []string{"ldap", "stub", "flairbit", "jsonfile"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %q", err, name)
		}
	}
}

func TestPluginConfigErrorsAreReadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"missing key file", []string{"profiles.flairbit.base_url=http://127.0.0.1:1", "profiles.flairbit.service_auth.private_key_file=/nonexistent/key.pem"}, "profiles.flairbit.service_auth.private_key_file"},
		{"unknown key in a plugin section", []string{"profiles.flairbit.base_url=http://127.0.0.1:1", "profiles.flairbit.baseurl=x"}, "profiles.flairbit.baseurl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadSample(t, "flairbit", tc.set...)
			_, err := platform.Options(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line naming %s", err, tc.want)
			}
		})
	}
	t.Run("bad PEM", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.pem")
		if err := os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := loadSample(t, "flairbit", "profiles.flairbit.base_url=http://127.0.0.1:1", "profiles.flairbit.service_auth.private_key_file="+bad)
		if _, err := platform.Options(cfg); err == nil || !strings.Contains(err.Error(), "private_key_file") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestProductionSample starts the production-style sample against the real
// PostgreSQL and RabbitMQ.
func TestProductionSample(t *testing.T) {
	db := storetest.NewPostgres(t)
	amqpURL := os.Getenv("TEST_CHAT_AMQP_URL")
	if amqpURL == "" {
		t.Skip("needs TEST_CHAT_AMQP_URL")
	}
	cfg, err := config.Load(config.Source{File: "testdata/production.yaml", FileRequired: true, Env: []string{},
		Set: []string{"storage.dsn=" + db.DSN, "relay.amqp.url=" + amqpURL}})
	if err != nil {
		t.Fatal(err)
	}
	a := platformtest.Start(t, cfg)
	if res := a.Do("GET", "/readyz", "", nil); res.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", res.Status, res.Body)
	}
	if res := a.Do("POST", "/api/dev/token", "", `{"userId":"alice"}`); res.Status != http.StatusNotFound {
		t.Fatalf("dev tokens are off in production: %d", res.Status)
	}
	if got := senderName(t, a); got == "" {
		t.Fatal("no sender profile from the stub")
	}
}

// TestReadinessChecksAreThePlatforms: /readyz asks the database, the relay
// and the gateway, which the platform registers (the modules only report).
func TestReadinessChecksAreThePlatforms(t *testing.T) {
	a := platformtest.Start(t, loadSample(t, "stub"))
	res := a.Do("GET", "/readyz", "", nil)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	res.JSON(t, &body)
	want := map[string]string{"database": "ok", "relay": "ok", "gateway": "ok"}
	if res.Status != http.StatusOK || !maps.Equal(body.Checks, want) {
		t.Fatalf("readyz: %d %s, want 200 with checks %v", res.Status, res.Body, want)
	}
}

// builds counts how often the "counting" plugin's factory ran.
var builds atomic.Int32

func init() {
	profiles.Register("counting", func(map[string]any, profiles.Env) (profiles.Provider, error) {
		builds.Add(1)
		return profilestest.NewFake(), nil
	})
}

// TestProviderIsBuiltOnce: assembling and starting the service builds the
// profile plugin once (its factory may read files or keys).
func TestProviderIsBuiltOnce(t *testing.T) {
	builds.Store(0)
	a := platformtest.Start(t, loadSample(t, "stub", "profiles.provider=counting"))
	if res := a.Do("GET", "/readyz", "", nil); res.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", res.Status, res.Body)
	}
	if n := builds.Load(); n != 1 {
		t.Fatalf("the plugin factory ran %d times, want once", n)
	}
}
