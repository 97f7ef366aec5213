package webclient_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/webclient"
)

func start(t *testing.T, set func(*config.Config)) *platformtest.App {
	t.Helper()
	cfg := platformtest.Config(t, config.Storage{
		Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "chat.db"), MaxOpenConns: 4,
	})
	if set != nil {
		set(&cfg)
	}
	return platformtest.Start(t, cfg)
}

// The hooks the browser tests and anyone automating the client rely on.
var testIDs = []string{
	"login-user", "login-token", "login-submit", "new-session", "new-session-submit",
	"composer", "send", "typing", "connection-status",
}

func TestPageAndAssets(t *testing.T) {
	t.Parallel()
	a := start(t, nil)

	res := a.Do(http.MethodGet, "/", "", nil)
	if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", res.Status, res.Header.Get("Content-Type"))
	}
	page := string(res.Body)
	for _, id := range testIDs {
		if !strings.Contains(page, `data-testid="`+id+`"`) {
			t.Errorf("the page has no data-testid %q", id)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	// Every script and stylesheet the page names is served, with a type a
	// browser accepts under X-Content-Type-Options: nosniff; none is remote.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page references %d assets, want the stylesheet and three scripts", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/static/") {
			t.Errorf("asset %q is not served by this binary", ref)
			continue
		}
		r := a.Do(http.MethodGet, ref, "", nil)
		want := "text/javascript"
		if strings.HasSuffix(ref, ".css") {
			want = "text/css"
		}
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), want) || len(r.Body) == 0 {
			t.Errorf("GET %s: %d %q (%d bytes)", ref, r.Status, r.Header.Get("Content-Type"), len(r.Body))
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", ref)
		}
		etag := r.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", ref)
			continue
		}
		if again := a.Do(http.MethodGet, ref, "", nil, "If-None-Match", etag); again.Status != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", ref, again.Status)
		}
	}
	// The JavaScript carries the list hooks too (they are created per item).
	js := string(a.Do(http.MethodGet, "/static/app.js", "", nil).Body)
	for _, id := range []string{"session-item", "unread-badge", "message"} {
		if !strings.Contains(js, `'data-testid': '`+id+`'`) {
			t.Errorf("app.js creates no data-testid %q", id)
		}
	}
	if !strings.Contains(js, "data-session-id") || !strings.Contains(js, "'data-seq'") {
		t.Error("app.js sets no data-session-id or data-seq")
	}
}

// The vendored libraries are the npm releases named in static/vendor/README.md.
func TestVendoredLibraries(t *testing.T) {
	t.Parallel()
	a := start(t, nil)
	want := map[string]string{
		"/static/vendor/stomp.umd.min.js":      "1cac8e0d31d3a70bf89fa7f2200243a00e02b2e8636e00fa5e760adb7d04f6fd",
		"/static/vendor/sockjs.min.js":         "1e0f37d073666196b0848fd7d80d525268d5adf47ea1ec459632f05bbf8e1f54",
		"/static/vendor/stompjs.LICENSE":       "",
		"/static/vendor/sockjs-client.LICENSE": "",
	}
	for path, sum := range want {
		res := a.Do(http.MethodGet, path, "", nil)
		if res.Status != http.StatusOK {
			t.Errorf("GET %s: %d", path, res.Status)
			continue
		}
		got := sha256.Sum256(res.Body)
		if sum != "" && hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x, want %s (the npm release)", path, got, sum)
		}
	}
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*config.Config)
		want webclient.ClientConfig
	}{
		{"embedded default", nil, webclient.ClientConfig{DevTokens: true, SockJS: true, Typing: true, MaxMessageBytes: 4096, Presence: true}},
		{"production-like", func(c *config.Config) {
			c.Auth.Dev.Enabled = false
			c.Features.SockJS = false
			c.Features.Typing = false
			c.Limits.MaxMessageBytes = 1000
			c.Features.Presence = false
		}, webclient.ClientConfig{MaxMessageBytes: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := start(t, tc.set)
			res := a.Do(http.MethodGet, "/client-config.json", "", nil)
			var got webclient.ClientConfig
			res.JSON(t, &got)
			if got != tc.want {
				t.Errorf("client config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestUnknownAndOff(t *testing.T) {
	t.Parallel()
	a := start(t, nil)
	for _, path := range []string{"/static/nope.js", "/static/", "/static/../go.mod", "/static/index.html"} {
		res := a.Do(http.MethodGet, path, "", nil)
		if res.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.Status)
		}
	}
	if res := a.Do(http.MethodPost, "/", "", nil); res.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.Status)
	}

	off := start(t, func(c *config.Config) { c.Features.WebClient = false })
	for _, path := range []string{"/", "/static/app.js", "/client-config.json"} {
		res := off.Do(http.MethodGet, path, "", nil)
		if res.Status != http.StatusNotFound || res.Problem(t) != "not_found" {
			t.Errorf("features.web_client off: GET %s: %d, want the 404 problem", path, res.Status)
		}
	}
}
