package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	chatservice "github.com/chat-service/chat"
)

func load(t *testing.T, yaml string, env []string, set ...string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chat.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = []string{}
	}
	return Load(Source{File: path, FileRequired: true, Env: env, Set: set})
}

func TestDefaultsAreTheShippedFile(t *testing.T) {
	cfg, err := load(t, "", nil)
	if err != nil {
		t.Fatalf("embedded defaults do not load: %v", err)
	}
	if cfg.Storage.Driver != "sqlite" || cfg.Relay.Driver != "memory" || cfg.Profiles.Provider != "stub" || !cfg.Auth.Dev.Enabled {
		t.Fatalf("embedded default is not SQLite + memory relay + stub + dev tokens: %+v", cfg)
	}
	if cfg.Limits.MaxMessageBytes != 4096 || cfg.Limits.MaxFrameBytes != 65536 || cfg.Recovery.MaxMessages != 1000 ||
		cfg.Auth.JWT.Leeway != 30*time.Second || cfg.Limits.RatePerSecond != 20 || cfg.Limits.Burst != 40 {
		t.Fatalf("defaults differ from docs/api.md's (\"Default limits\"): %+v %+v", cfg.Limits, cfg.Recovery)
	}
}

// TestDefaultsIsWhatAnEmptyFileGives: Defaults, which tests and modules
// start from, is exactly what start-up gives when the operator sets nothing.
func TestDefaultsIsWhatAnEmptyFileGives(t *testing.T) {
	cfg, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := Defaults(); !reflect.DeepEqual(d, cfg) {
		t.Fatalf("Defaults() = %+v\nstart-up with an empty file = %+v", d, cfg)
	}
}

func TestStartupErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"typo in a key", "storage:\n  dsnn: file:x.db\n", []string{`unknown key "storage.dsnn"`, `did you mean "storage.dsn"`}},
		{"unknown section", "stroage:\n  driver: sqlite\n", []string{`unknown key "stroage.driver"`}},
		{"bad enum", "storage:\n  driver: mysql\n", []string{`storage.driver: "mysql" is not one of sqlite, postgres`}},
		{"bad relay", "relay:\n  driver: kafka\n", []string{`relay.driver: "kafka" is not one of memory, amqp`}},
		{"bad postgres dsn", "storage:\n  driver: postgres\n  dsn: \"host=db port=notaport\"\n", []string{"storage.dsn: postgres wants postgres://"}},
		{"bad postgres url", "storage:\n  driver: postgres\n  dsn: \"postgres://u@h:99999999/db\"\n", []string{"storage.dsn: not a valid PostgreSQL URL"}},
		{"bad sqlite dsn", "storage:\n  dsn: \"data/chat.db\"\n", []string{"storage.dsn: sqlite wants file:PATH"}},
		{"bad duration", "outbox:\n  poll_interval: soon\n", []string{"outbox.poll_interval"}},
		{"bad number", "limits:\n  burst: many\n", []string{"limits.burst"}},
		{"out of range", "limits:\n  max_message_bytes: 0\n", []string{"limits.max_message_bytes: must be between 1 and"}},
		{"bad log level", "log:\n  level: loud\n", []string{`log.level: "loud" is not one of debug, info, warn, error`}},
		{"half tls", "server:\n  tls:\n    cert_file: /nonexistent.pem\n", []string{"server.tls: set both cert_file and key_file"}},
		{"short secret", "auth:\n  jwt:\n    hmac_secret: short\n", []string{"auth.jwt.hmac_secret: must be at least 32 bytes"}},
		{"missing key file", "auth:\n  jwt:\n    public_keys:\n      k1: /nonexistent/k1.pem\n", []string{"auth.jwt.public_keys.k1: cannot read"}},
		{"no auth at all", "auth:\n  dev:\n    enabled: false\n", []string{"auth.jwt: no way to verify tokens"}},
		{"bad amqp url", "relay:\n  driver: amqp\n  amqp:\n    url: http://x\n", []string{"relay.amqp.url"}},
		{"every bad value at once", "limits:\n  burst: many\noutbox:\n  poll_interval: soon\n", []string{"limits.burst: cannot parse", "outbox.poll_interval: time: invalid duration"}},
		{"profile cache ttl", "profiles:\n  cache:\n    ttl: 0s\n", []string{"profiles.cache.ttl: must be between"}},
		{"profile timeout", "profiles:\n  timeout: 0s\n", []string{"profiles.timeout: must be between"}},
		{"breaker failures", "profiles:\n  breaker:\n    max_failures: 0\n", []string{"profiles.breaker.max_failures: must be at least 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, nil)
			if err == nil {
				t.Fatal("start-up accepted a bad configuration")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

func TestPrecedenceFlagsOverEnvOverFile(t *testing.T) {
	yaml := "server:\n  addr: 127.0.0.1:1111\nlog:\n  level: warn\n"
	env := []string{
		"CHAT_SERVER__ADDR=127.0.0.1:2222",
		"CHAT_SERVER__CORS__ALLOWED_ORIGINS=https://a.example,https://b.example",
		"CHAT_LIMITS__MAX_MESSAGE_BYTES=2048",
		"TEST_CHAT_POSTGRES_DSN=ignored", // not ours: no CHAT_ prefix
	}
	cfg, err := load(t, yaml, env, "server.addr=127.0.0.1:3333")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:3333" {
		t.Errorf("flag did not win: addr %q", cfg.Server.Addr)
	}
	if cfg.Log.Level != "warn" {
		t.Errorf("file did not override default: level %q", cfg.Log.Level)
	}
	if cfg.Limits.MaxMessageBytes != 2048 {
		t.Errorf("env did not override default: %d", cfg.Limits.MaxMessageBytes)
	}
	if want := []string{"https://a.example", "https://b.example"}; !reflect.DeepEqual(cfg.Server.CORS.AllowedOrigins, want) {
		t.Errorf("comma list from env: got %q", cfg.Server.CORS.AllowedOrigins)
	}
	cfg, err = load(t, yaml, env[:1])
	if err != nil || cfg.Server.Addr != "127.0.0.1:2222" {
		t.Errorf("env did not win over file: %q %v", cfg.Server.Addr, err)
	}
}

func TestEnvTypoIsRefused(t *testing.T) {
	_, err := load(t, "", []string{"CHAT_STORAGE__DRIVR=postgres"})
	if err == nil || !strings.Contains(err.Error(), `unknown key "storage.drivr"`) {
		t.Fatalf("got %v", err)
	}
}

func TestMissingExplicitFileFails(t *testing.T) {
	_, err := Load(Source{File: filepath.Join(t.TempDir(), "nope.yaml"), FileRequired: true, Env: []string{}})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestPluginSectionsAreKeptRaw(t *testing.T) {
	cfg, err := load(t, "profiles:\n  provider: acme\n  acme:\n    endpoint: http://x\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	sec, ok := cfg.Profiles.Plugins["acme"].(map[string]any)
	if !ok || sec["endpoint"] != "http://x" {
		t.Fatalf("plugin section lost: %#v", cfg.Profiles.Plugins)
	}
}

// TestShippedFileDocumentsEveryKey keeps chat.yaml honest: every key the
// Config knows appears in it with a comment on its line or just above.
func TestShippedFileDocumentsEveryKey(t *testing.T) {
	known, open := map[string]bool{}, []string{}
	walk(reflect.TypeOf(Config{}), "", known, &open)
	lines := strings.Split(string(chatservice.DefaultConfig), "\n")
	var path []string
	documented := map[string]bool{}
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := (len(line) - len(strings.TrimLeft(line, " "))) / 2
		key, _, _ := strings.Cut(trimmed, ":")
		path = append(path[:min(indent, len(path))], key)
		full := strings.Join(path, ".")
		hasComment := strings.Contains(line, "#") || (i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#"))
		documented[full] = hasComment
	}
	for k := range known {
		has, present := documented[k]
		if !present {
			t.Errorf("chat.yaml lacks key %s", k)
		} else if !has {
			t.Errorf("chat.yaml key %s has no comment", k)
		}
	}
}

// TestDevTokensOnlyWhenNothingLooksLikeProduction: the shipped file turns
// dev tokens on and every operator file is layered over it, so a
// production-like file that does not mention auth.dev must not start.
func TestDevTokensOnlyWhenNothingLooksLikeProduction(t *testing.T) {
	const secret = "auth:\n  jwt:\n    hmac_secret: 0123456789abcdef0123456789abcdef\n"
	pg := "storage:\n  driver: postgres\n  dsn: postgres://u@127.0.0.1:5432/db\n"
	for _, tc := range []struct {
		name, yaml string
		set        []string
		refused    string // "" means it must load
	}{
		{name: "embedded default", yaml: ""},
		{name: "localhost", yaml: "server:\n  addr: localhost:8080\n"},
		{name: "ipv6 loopback", yaml: "server:\n  addr: \"[::1]:8080\"\n"},
		{name: "postgres", yaml: pg, refused: "storage.driver: postgres"},
		{name: "amqp", yaml: "relay:\n  driver: amqp\n", refused: "relay.driver: amqp"},
		{name: "all interfaces", yaml: "server:\n  addr: \":8080\"\n", refused: `server.addr: ":8080" is not a loopback address`},
		{name: "public address", yaml: "server:\n  addr: 0.0.0.0:8080\n", refused: "server.addr"},
		{name: "allow_unsafe", yaml: pg + "auth:\n  dev:\n    allow_unsafe: true\n"},
		{name: "dev off", yaml: pg + secret, set: []string{"auth.dev.enabled=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, nil, tc.set...)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Fatal("started with dev tokens next to production settings")
			case tc.refused != "" && (!strings.Contains(err.Error(), "auth.dev.enabled") || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("error %q does not name auth.dev.enabled and %q", err, tc.refused)
			}
		})
	}
}

func TestAudienceRequiredWithPublicKeys(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k1.pem")
	if err := os.WriteFile(key, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "auth:\n  dev:\n    enabled: false\n  jwt:\n    public_keys:\n      k1: " + key + "\n"
	if _, err := load(t, base, nil); err == nil || !strings.Contains(err.Error(), "auth.jwt.audience: required with public_keys") {
		t.Fatalf("public_keys without audience: %v", err)
	}
	if _, err := load(t, base+"    audience: chat-service\n", nil); err != nil {
		t.Fatalf("with audience: %v", err)
	}
}

func TestByteSizes(t *testing.T) {
	for in, want := range map[string]ByteSize{"1MiB": 1 << 20, "512KiB": 512 << 10, "2MB": 2_000_000, "65536": 65536} {
		cfg, err := load(t, "limits:\n  outbound_queue_bytes: "+in+"\n", nil)
		if err != nil || cfg.Limits.OutboundQueueBytes != want {
			t.Errorf("%s: %d %v, want %d", in, cfg.Limits.OutboundQueueBytes, err, want)
		}
	}
	if _, err := load(t, "limits:\n  outbound_queue_bytes: lots\n", nil); err == nil || !strings.Contains(err.Error(), "outbound_queue_bytes") {
		t.Errorf("bad size: %v", err)
	}
	if _, err := load(t, "limits:\n  outbound_queue_bytes: 1KiB\n", nil); err == nil || !strings.Contains(err.Error(), "limits.outbound_queue_bytes") {
		t.Errorf("too small: %v", err)
	}
}
