package profiles

import "github.com/chat-service/chat/config"

// DecodeSection strictly decodes a plugin's raw profiles.<plugin> section
// into out (a pointer to a struct whose fields carry `koanf:"key"` tags,
// like the config package), with config.Decode: fields absent from the
// section keep the values out already has, so a plugin sets its defaults
// first; an unknown key or a value of the wrong type is an error naming the
// full key, e.g. "profiles.flairbit.service_auth.ttl: ...", all problems on
// one line.
func DecodeSection(plugin string, section map[string]any, out any) error {
	return config.Decode("profiles."+plugin, section, out)
}
