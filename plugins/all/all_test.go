package all_test

import (
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	chatservice "github.com/chat-service/chat"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
	_ "github.com/chat-service/chat/plugins/all"
)

func TestRegistersShippedPlugins(t *testing.T) {
	if got := profiles.Names(); !slices.Equal(got, []string{"flairbit", "jsonfile", "stub"}) {
		t.Fatalf("Names() = %v", got)
	}
}

// TestShippedChatYAML checks the profiles sections of the shipped chat.yaml
// against the linked plugins: every section has an owner, each decodes
// strictly (an empty required value aside) and the default provider starts.
func TestShippedChatYAML(t *testing.T) {
	var doc struct {
		Profiles map[string]any `yaml:"profiles"`
	}
	if err := yaml.Unmarshal(chatservice.DefaultConfig, &doc); err != nil {
		t.Fatalf("parse chat.yaml: %v", err)
	}
	cfg := profilestest.TestConfig()
	cfg.Provider, _ = doc.Profiles["provider"].(string)
	cfg.Plugins = map[string]any{}
	for k, v := range doc.Profiles {
		switch k {
		case "provider", "cache", "breaker", "timeout", "can_chat_fail_open":
		default:
			cfg.Plugins[k] = v
		}
	}
	if len(cfg.Plugins) != 3 {
		t.Errorf("chat.yaml plugin sections = %v, want stub, flairbit, jsonfile", cfg.Plugins)
	}
	if cfg.Provider != "stub" {
		t.Errorf("shipped profiles.provider = %q, want stub", cfg.Provider)
	}
	if _, err := profiles.Build(cfg, profiles.Env{}); err != nil {
		t.Fatalf("shipped profiles config: %v", err)
	}
	for name, want := range map[string]string{
		"flairbit": "profiles.flairbit.base_url: required",
		"jsonfile": "profiles.jsonfile.path: required",
	} {
		c := cfg
		c.Provider = name
		if _, err := profiles.Build(c, profiles.Env{}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("shipped %s section: %v, want only %q (nothing unknown)", name, err, want)
		}
	}
}
