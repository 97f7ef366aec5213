package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/platform/platformtest/bintest"
)

// chatYAML is what an operator of the custom binary writes: it selects the
// binary's own plugin and configures its section.
const chatYAML = `profiles:
  provider: greeting
  greeting:
    prefix: Hello
`

// TestSelectsItsPluginFromChatYAML runs the example with a chat.yaml naming
// its own plugin and sees the plugin name the sender of a message.
func TestSelectsItsPluginFromChatYAML(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chat.yaml"), []byte(chatYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := bintest.FreeAddr(t)
	// It reads ./chat.yaml; the SQLite file goes under ./data.
	p := bintest.Start(t, bintest.Build(t, "."), dir, []string{"CHAT_SERVER__DRAIN_DELAY=0s", "CHAT_SERVER__DRAIN_SPREAD=0s"},
		"-set", "server.addr="+addr, "-set", "log.level=warn")
	base := "http://" + addr
	p.WaitReady(t, base)

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

	p.Terminate(t, 15*time.Second)
}

// TestLinksItsPluginAndTheShippedOnes: an unknown provider is refused with
// one line listing what the binary links, its own plugin and plugins/all.
func TestLinksItsPluginAndTheShippedOnes(t *testing.T) {
	cmd := exec.Command(bintest.Build(t, "."), "-set", "profiles.provider=ldap", "-set", "server.addr="+bintest.FreeAddr(t))
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
