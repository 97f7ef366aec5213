package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/platform/platformtest/bintest"
)

// TestServesAndStopsOnSIGTERM runs the binary with the embedded defaults
// (no chat.yaml in its working directory), waits for /readyz, then sends
// SIGTERM: it must exit 0 within the shutdown bound.
func TestServesAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	addr := bintest.FreeAddr(t)
	p := bintest.Start(t, bintest.Build(t, "."), dir, []string{"CHAT_SERVER__SHUTDOWN_TIMEOUT=3s", "CHAT_SERVER__DRAIN_DELAY=200ms"},
		"-set", "server.addr="+addr, "-set", "log.level=warn")
	p.WaitReady(t, "http://"+addr)
	if _, err := os.Stat(filepath.Join(dir, "data", "chat.db")); err != nil {
		t.Errorf("the embedded default did not create its SQLite file: %v", err)
	}
	p.Terminate(t, 15*time.Second)
}

func TestBadConfigExitsWithOneLine(t *testing.T) {
	bin := bintest.Build(t, ".")
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"typo in the file", []string{"-config", "bad.yaml"}, nil, `unknown key "storage.dsnn"`},
		{"bad enum from the environment", nil, []string{"CHAT_RELAY__DRIVER=kafka"}, `relay.driver: "kafka" is not one of memory, amqp`},
		{"bad DSN from a flag", []string{"-set", "storage.driver=postgres", "-set", "storage.dsn=mysql://x"}, nil, "storage.dsn"},
		{"missing explicit file", []string{"-config", "nope.yaml"}, nil, "nope.yaml"},
		{"unreachable database", []string{"-set", "storage.driver=postgres", "-set", "storage.dsn=postgres://u@127.0.0.1:1/db?connect_timeout=2",
			"-set", "auth.dev.enabled=false", "-set", "auth.jwt.hmac_secret=0123456789abcdef0123456789abcdef"}, nil, "storage: connect postgres"},
		{"dev tokens next to postgres", []string{"-set", "storage.driver=postgres", "-set", "storage.dsn=postgres://u@127.0.0.1:1/db"}, nil,
			"auth.dev.enabled: development tokens (any user id, no password) are refused with storage.driver: postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("storage:\n  dsnn: x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, append(tc.args, "-set", "server.addr="+bintest.FreeAddr(t))...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errorsAs(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			// Logs may come first; the last line is the one that says why.
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, tc.want) {
				t.Fatalf("last line %q does not say %q; stderr:\n%s", last, tc.want, stderr.String())
			}
		})
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
