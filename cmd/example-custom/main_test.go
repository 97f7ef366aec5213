package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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

// chatYAML is what an operator of the custom binary writes: it selects the
// binary's own plugin and configures its section.
const chatYAML = `profiles:
  provider: greeting
  greeting:
    prefix: Hello
`

// build compiles the example into a temp dir, as CI does with every test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "example-custom")
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

// TestSelectsItsPluginFromChatYAML runs the example with a chat.yaml naming
// its own plugin and sees the plugin name the sender of a message.
func TestSelectsItsPluginFromChatYAML(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chat.yaml"), []byte(chatYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "-set", "server.addr="+addr, "-set", "log.level=warn")
	cmd.Dir = dir // reads ./chat.yaml; the SQLite file goes under ./data
	cmd.Env = append(os.Environ(), "CHAT_SERVER__DRAIN_DELAY=0s", "CHAT_SERVER__DRAIN_SPREAD=0s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if res, err := http.Get(base + "/readyz"); err == nil {
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

	var tok struct{ Token string }
	post(t, base+"/api/dev/token", "", `{"userId":"alice"}`, http.StatusOK, &tok)
	var session struct{ ID string }
	post(t, base+"/api/chat/sessions", tok.Token, `{"participants":["bob"]}`, http.StatusCreated, &session)
	var msg struct {
		Sender *struct{ DisplayName string } `json:"sender"`
	}
	post(t, base+"/api/chat/sessions/"+session.ID+"/messages", tok.Token, `{"content":"hi"}`, http.StatusCreated, &msg)
	if msg.Sender == nil || msg.Sender.DisplayName != "Hello, alice" {
		t.Fatalf("sender %+v, want the greeting plugin's \"Hello, alice\"", msg.Sender)
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

// TestLinksItsPluginAndTheShippedOnes: an unknown provider is refused with
// one line listing what the binary links, its own plugin and plugins/all.
func TestLinksItsPluginAndTheShippedOnes(t *testing.T) {
	bin := build(t)
	cmd := exec.Command(bin, "-set", "profiles.provider=ldap", "-set", "server.addr="+freeAddr(t))
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	want := `profiles.provider: unknown provider "ldap" (registered: flairbit, greeting, jsonfile, stub)`
	if got := strings.TrimSpace(stderr.String()); got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
}

func post(t *testing.T, url, token, body string, status int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("POST %s: %d %s, want %d", url, res.StatusCode, data, status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("POST %s: %q: %v", url, data, err)
	}
}
