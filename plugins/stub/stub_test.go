package stub_test

import (
	"strings"
	"testing"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
	"github.com/chat-service/chat/plugins/stub"
)

// fixtureSection is profilestest's fixture written as chat.yaml would hold it.
func fixtureSection() map[string]any {
	ps := map[string]any{}
	for _, u := range profilestest.Users {
		entry := map[string]any{"display_name": u.DisplayName}
		if u.AvatarURL != "" {
			entry["avatar_url"] = u.AvatarURL
		}
		ps[u.UserID] = entry
	}
	var denied []any
	for _, d := range profilestest.DeniedPairs {
		denied = append(denied, []any{d[0], d[1]})
	}
	return map[string]any{"profiles": ps, "denied_pairs": denied}
}

func build(section map[string]any) (profiles.Provider, error) {
	cfg := profilestest.TestConfig()
	cfg.Provider = stub.Name
	cfg.Plugins = map[string]any{stub.Name: section}
	return profiles.Build(cfg, profiles.Env{})
}

func TestConformance(t *testing.T) {
	p, err := build(fixtureSection())
	if err != nil {
		t.Fatalf("build stub: %v", err)
	}
	profilestest.Run(t, p, profilestest.KnowsEveryone())
}

func TestShippedDefaultSection(t *testing.T) {
	// chat.yaml ships `stub: {profiles: {}, denied_pairs: []}`.
	p, err := build(map[string]any{"profiles": map[string]any{}, "denied_pairs": []any{}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	got, err := p.Profiles(t.Context(), []string{"alice"})
	if err != nil || got["alice"].DisplayName != "Alice" {
		t.Fatalf("Profiles = %v, %v", got, err)
	}
	if _, err := build(nil); err != nil {
		t.Fatalf("build without a section: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		section map[string]any
		want    string
	}{
		{"unknown key", map[string]any{"profile": map[string]any{}}, "profiles.stub.profile: unknown key"},
		{"unknown profile key", map[string]any{"profiles": map[string]any{"alice": map[string]any{"name": "A"}}}, "profiles.stub.profiles.alice.name: unknown key"},
		{"pair of one", map[string]any{"denied_pairs": []any{[]any{"a"}}}, `profiles.stub.denied_pairs[0]: want two user ids, got ["a"]`},
		{"pair with empty id", map[string]any{"denied_pairs": []any{[]any{"a", "b"}, []any{"a", ""}}}, `profiles.stub.denied_pairs[1]: want two user ids`},
		{"bad avatar", map[string]any{"profiles": map[string]any{"alice": map[string]any{"avatar_url": "alice.png"}}}, `profiles.stub.profiles.alice.avatar_url: want an absolute http(s) URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.section)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant prefix %s", err, tc.want)
			}
		})
	}
}

func TestDisplayName(t *testing.T) {
	for id, want := range map[string]string{
		"alice":                "Alice",
		"bob_smith":            "Bob Smith",
		"dave.lee@example.com": "Dave Lee",
		"émile-zola":           "Émile Zola",
		"12345":                "User 12345",
		"__":                   "User __",
	} {
		if got := stub.DisplayName(id); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", id, got, want)
		}
	}
	if got := []rune(stub.DisplayName(strings.Repeat("a", 200))); len(got) != 64 {
		t.Errorf("long id: %d runes, want 64", len(got))
	}
}

func TestRegistered(t *testing.T) {
	if err := profiles.Check(config.Profiles{Provider: "stub"}); err != nil {
		t.Fatal(err)
	}
}
