// Package interop runs the browser-client interop tests (node --test, in
// this directory) against the service as cmd/chat assembles it, on SQLite
// with the in-process relay and the development token issuer.
package interop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

// TestBrowserClients needs node (v20+) and `npm ci` in this directory;
// without them it skips with "needs node" (CI sets TEST_CHAT_REQUIRE_NODE
// and fails on that skip).
func TestBrowserClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs node: not on PATH")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@stomp", "stompjs")); err != nil {
		t.Skip("needs node modules: run `npm ci` in test/interop")
	}
	cfg := platformtest.Config(t, config.Storage{
		Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "chat.db"), MaxOpenConns: 8,
	})
	cfg.Auth.Dev.Enabled = true
	cfg.Features.SockJS = true
	cfg.Outbox.PollInterval = 10 * time.Millisecond
	app := platformtest.Start(t, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-concurrency=1", "--test-reporter=spec", ".")
	cmd.Env = append(os.Environ(), "INTEROP_URL="+app.URL, "NODE_ENV=production",
		"INTEROP_HMAC_SECRET="+platformtest.Secret) // refresh.test.mjs mints short-lived tokens
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}
}
