package profiles_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
)

// testSection is a plugin section with nesting, a duration, a list and a map.
type testSection struct {
	URL     string        `koanf:"url"`
	Enabled bool          `koanf:"enabled"`
	TTL     time.Duration `koanf:"ttl"`
	Auth    struct {
		KeyID string `koanf:"key_id"`
	} `koanf:"auth"`
	Tags  []string `koanf:"tags"`
	Users map[string]struct {
		Name string `koanf:"name"`
	} `koanf:"users"`
}

var lastSection testSection

func init() {
	profiles.Register("test_ok", func(raw map[string]any, env profiles.Env) (profiles.Provider, error) {
		s := testSection{TTL: time.Minute}
		if err := profiles.DecodeSection("test_ok", raw, &s); err != nil {
			return nil, err
		}
		lastSection = s
		return profilestest.NewFake(profiles.Profile{UserID: "alice", DisplayName: "Alice"}), nil
	})
	profiles.Register("test_fail", func(map[string]any, profiles.Env) (profiles.Provider, error) {
		return nil, errors.New("cannot start")
	})
}

func cfgFor(provider string, sections map[string]any) config.Profiles {
	cfg := profilestest.TestConfig()
	cfg.Provider = provider
	cfg.Plugins = sections
	return cfg
}

func TestRegisterPanics(t *testing.T) {
	f := func(map[string]any, profiles.Env) (profiles.Provider, error) { return nil, nil }
	for _, tc := range []struct {
		name   string
		plugin string
		f      profiles.Factory
	}{
		{"empty name", "", f},
		{"duplicate", "test_ok", f},
		{"reserved", "cache", f},
		{"nil factory", "test_nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", tc.plugin)
				}
			}()
			profiles.Register(tc.plugin, tc.f)
		})
	}
}

func TestNames(t *testing.T) {
	names := profiles.Names()
	if strings.Join(names, ",") != "test_fail,test_ok" {
		t.Fatalf("Names() = %v, want sorted test plugins", names)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Profiles
		want string // "" = no error
	}{
		{"ok", cfgFor("test_ok", map[string]any{"test_ok": map[string]any{}, "test_fail": nil}), ""},
		{"empty provider", cfgFor("", nil), "profiles.provider: required (registered: test_fail, test_ok)"},
		{"unknown provider", cfgFor("flairbyte", nil), `profiles.provider: unknown provider "flairbyte" (registered: test_fail, test_ok)`},
		{"orphan section", cfgFor("test_ok", map[string]any{"ldap": map[string]any{"url": "x"}}), "profiles.ldap: unknown key: no linked plugin owns this section (registered: test_fail, test_ok)"},
		{"section not a mapping", cfgFor("test_ok", map[string]any{"test_ok": "yes"}), "profiles.test_ok: want a mapping of keys, got string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := profiles.Check(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("Check error = %v\nwant %s", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("Check error spans lines: %q", err)
			}
		})
	}
}

func TestBuildDecodesSectionStrictly(t *testing.T) {
	ok := map[string]any{
		"url": "https://x.test", "enabled": "true", "ttl": "90s",
		"auth":  map[string]any{"key_id": "k1"},
		"tags":  "a,b",
		"users": map[string]any{"alice": map[string]any{"name": "Alice"}},
	}
	if _, err := profiles.Build(cfgFor("test_ok", map[string]any{"test_ok": ok}), profiles.Env{}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	s := lastSection
	if s.URL != "https://x.test" || !s.Enabled || s.TTL != 90*time.Second || s.Auth.KeyID != "k1" ||
		strings.Join(s.Tags, "|") != "a|b" || s.Users["alice"].Name != "Alice" {
		t.Fatalf("decoded %+v", s)
	}
	if _, err := profiles.Build(cfgFor("test_ok", nil), profiles.Env{}); err != nil || lastSection.TTL != time.Minute {
		t.Fatalf("no section: err %v, ttl %s (want the plugin default)", err, lastSection.TTL)
	}

	for _, tc := range []struct {
		name    string
		section map[string]any
		want    string
	}{
		{"unknown top key", map[string]any{"urll": "x"}, "profiles.test_ok.urll: unknown key"},
		{"unknown nested key", map[string]any{"auth": map[string]any{"kid": "x"}}, "profiles.test_ok.auth.kid: unknown key"},
		{"unknown key in map value", map[string]any{"users": map[string]any{"bob": map[string]any{"nmae": "B"}}}, "profiles.test_ok.users.bob.nmae: unknown key"},
		{"bad duration", map[string]any{"ttl": "soon"}, "profiles.test_ok.ttl: "},
		{"bad type", map[string]any{"auth": "k1"}, "profiles.test_ok.auth: "},
		{"two problems", map[string]any{"a": 1, "b": 2}, "profiles.test_ok.a: unknown key; profiles.test_ok.b: unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := profiles.Build(cfgFor("test_ok", map[string]any{"test_ok": tc.section}), profiles.Env{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Build error = %v\nwant prefix %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestBuildPrefixesFactoryErrors(t *testing.T) {
	_, err := profiles.Build(cfgFor("test_fail", nil), profiles.Env{})
	if err == nil || err.Error() != "profiles.test_fail: cannot start" {
		t.Fatalf("Build error = %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	p, err := profiles.Build(cfgFor("test_ok", nil), profiles.Env{})
	if err != nil || p == nil {
		t.Fatalf("Build: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  config.Profiles
		want string
	}{
		{"unknown provider", cfgFor("nope", nil), `profiles.provider: unknown provider "nope" (registered: test_fail, test_ok)`},
		{"plugin section", cfgFor("test_ok", map[string]any{"test_ok": map[string]any{"bogus": 1}}), "profiles.test_ok.bogus: unknown key"},
		{"plugin factory", cfgFor("test_fail", nil), "profiles.test_fail: cannot start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := profiles.Build(tc.cfg, profiles.Env{}); err == nil || err.Error() != tc.want {
				t.Fatalf("Build error = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestModule(t *testing.T) {
	cfg := cfgFor("test_ok", nil)
	p, err := profiles.Build(cfg, profiles.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var dir profiles.Directory
	app := fxtest.New(t, profiles.Module(cfg, p), fx.Populate(&dir))
	app.RequireStart()
	if got := dir.Lookup(context.Background(), []string{"alice"}); got["alice"].DisplayName != "Alice" {
		t.Errorf("Lookup = %v", got)
	}
	app.RequireStop()
}

// TestDecodeSectionNamesEveryProblem: a section with several bad values
// reports each, by full key, in one line.
func TestDecodeSectionNamesEveryProblem(t *testing.T) {
	var s testSection
	err := profiles.DecodeSection("test_ok", map[string]any{"ttl": "soon", "enabled": "perhaps"}, &s)
	if err == nil {
		t.Fatal("bad section accepted")
	}
	for _, want := range []string{"profiles.test_ok.ttl: ", "profiles.test_ok.enabled: "} {
		if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q does not name %q on one line", err, want)
		}
	}
}
