package config

import (
	"strings"
	"testing"
	"time"
)

func TestPresenceKeys(t *testing.T) {
	cfg, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Features.Presence || cfg.Presence.TTL != 30*time.Second || cfg.Presence.Exchange != "chat.presence" {
		t.Fatalf("presence defaults: features.presence %v, %+v", cfg.Features.Presence, cfg.Presence)
	}
	cfg, err = load(t, "", []string{"CHAT_PRESENCE__TTL=5s", "CHAT_FEATURES__PRESENCE=false"})
	if err != nil || cfg.Presence.TTL != 5*time.Second || cfg.Features.Presence {
		t.Fatalf("environment overrides: %+v %v (%v)", cfg.Presence, cfg.Features.Presence, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"presence:\n  ttl: 10ms\n", "presence.ttl: must be between"},
		{"presence:\n  ttl: later\n", "presence.ttl"},
		{"presence:\n  exchange: \"\"\n", "presence.exchange: must not be empty"},
	} {
		if _, err := load(t, tc.yaml, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
