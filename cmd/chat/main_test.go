package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles this command once per test into a temp dir.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServesAndStopsOnSIGTERM runs the binary with the embedded defaults
// (no chat.yaml in its working directory), waits for /readyz, then sends
// SIGTERM: it must exit 0 within the shutdown bound.
func TestServesAndStopsOnSIGTERM(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "-set", "server.addr="+addr, "-set", "log.level=warn")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHAT_SERVER__SHUTDOWN_TIMEOUT=3s", "CHAT_SERVER__DRAIN_DELAY=200ms")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("exited before serving: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("never became ready:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "chat.db")); err != nil {
		t.Errorf("the embedded default did not create its SQLite file: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after SIGTERM:\n%s", out.String())
	}
}

func TestBadConfigExitsWithOneLine(t *testing.T) {
	bin := build(t)
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
			cmd := exec.Command(bin, append(tc.args, "-set", "server.addr="+freeAddr(t))...)
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
