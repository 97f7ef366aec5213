package jsonfile_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
	"github.com/chat-service/chat/plugins/jsonfile"
)

// writeFile writes content to path with a modification time of mtime, so
// tests never depend on the file system's timestamp granularity.
func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func fixtureJSON(t *testing.T) string {
	t.Helper()
	f := jsonfile.File{Profiles: profilestest.Users}
	for _, d := range profilestest.DeniedPairs {
		f.DeniedPairs = append(f.DeniedPairs, []string{d[0], d[1]})
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func build(section map[string]any, log *slog.Logger) (profiles.Provider, error) {
	cfg := profilestest.TestConfig()
	cfg.Provider = jsonfile.Name
	cfg.Plugins = map[string]any{jsonfile.Name: section}
	return profiles.Build(cfg, profiles.Env{Log: log})
}

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.json")
	writeFile(t, path, fixtureJSON(t), time.Now())
	p, err := build(map[string]any{"path": path}, nil)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	profilestest.Run(t, p)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.json")
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, `{"profiles":[{"userId":"alice","displayName":"Alice"}]}`, t0)
	var logs syncBuffer
	p, err := jsonfile.New(jsonfile.Config{Path: path}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	name := func() string {
		t.Helper()
		got, err := p.Profiles(t.Context(), []string{"alice"})
		if err != nil {
			t.Fatalf("Profiles: %v", err)
		}
		return got["alice"].DisplayName
	}
	allowed := func(a, b string) bool {
		ok, err := p.CanChat(t.Context(), a, b)
		if err != nil {
			t.Fatalf("CanChat: %v", err)
		}
		return ok
	}
	if got := name(); got != "Alice" {
		t.Fatalf("name = %q", got)
	}
	if !allowed("alice", "bob") {
		t.Fatal("no deniedPairs: CanChat = false")
	}

	writeFile(t, path, `{"profiles":[{"userId":"alice","displayName":"Alice v2"}],"deniedPairs":[["alice","bob"]]}`, t0.Add(time.Second))
	if got := name(); got != "Alice v2" {
		t.Fatalf("after edit: name = %q, want the new one", got)
	}
	if allowed("bob", "alice") {
		t.Fatal("after edit: CanChat(bob, alice) = true, want the new denied pair")
	}
	if !strings.Contains(logs.String(), "profiles file reloaded") {
		t.Errorf("no reload log line: %s", logs.String())
	}

	// A half-saved edit keeps the last good data and is reported once.
	writeFile(t, path, `{"profiles":[{"userId":"alice",`, t0.Add(2*time.Second))
	for range 3 {
		if got := name(); got != "Alice v2" {
			t.Fatalf("after a bad edit: name = %q, want the last good one", got)
		}
	}
	if n := strings.Count(logs.String(), "profiles file invalid"); n != 1 {
		t.Errorf("bad edit logged %d times, want once: %s", n, logs.String())
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "Alice v2" {
		t.Fatalf("file removed: name = %q, want the last good one", got)
	}

	writeFile(t, path, `{"profiles":[{"userId":"alice","displayName":"Alice v3"}]}`, t0.Add(3*time.Second))
	if got := name(); got != "Alice v3" {
		t.Fatalf("file back: name = %q", got)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, content, time.Now())
		return path
	}
	for _, tc := range []struct {
		name    string
		section map[string]any
		want    string
	}{
		{"no section", nil, "profiles.jsonfile.path: required"},
		{"empty path", map[string]any{"path": ""}, "profiles.jsonfile.path: required"},
		{"unknown key", map[string]any{"path": "x", "watch": true}, "profiles.jsonfile.watch: unknown key"},
		{"missing file", map[string]any{"path": filepath.Join(dir, "nope.json")}, "profiles.jsonfile.path: stat "},
		{"bad json", map[string]any{"path": file("bad.json", `{"profiles": [`)}, "profiles.jsonfile.path: parse "},
		{"unknown field", map[string]any{"path": file("field.json", `{"profiles":[{"userId":"a","name":"A"}]}`)}, `profiles.jsonfile.path: parse`},
		{"trailing data", map[string]any{"path": file("trail.json", `{"profiles":[]} {}`)}, `profiles.jsonfile.path: parse`},
		{"no user id", map[string]any{"path": file("noid.json", `{"profiles":[{"displayName":"A"}]}`)}, `profiles[0].userId: required`},
		{"duplicate", map[string]any{"path": file("dup.json", `{"profiles":[{"userId":"a"},{"userId":"a"}]}`)}, `profiles[1].userId: duplicate "a"`},
		{"bad pair", map[string]any{"path": file("pair.json", `{"profiles":[],"deniedPairs":[["a","b","c"]]}`)}, `deniedPairs[0]: want two user ids`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.section, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "profiles.jsonfile.") {
				t.Fatalf("error = %v\nwant it to name the key and contain %s", err, tc.want)
			}
		})
	}
}
