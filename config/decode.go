package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Decode strictly decodes section, the raw value of the chat.yaml key path
// prefix ("" for the whole file, "profiles.flairbit" for a plugin's own
// section), into out: a pointer to a struct whose fields carry `koanf:"key"`
// tags. Fields absent from section keep the values out already has, so a
// caller sets its defaults first. Durations accept "5m", sizes "1MiB"
// (ByteSize), lists a comma-separated string, and strings from CHAT_
// environment variables are converted. An unknown key or a value of the
// wrong type is a problem naming the full key
// ("profiles.flairbit.service_auth.ttl: ..."); all problems come in one
// line, sorted. The loader decodes Config with it and profile plugins their
// sections (profiles.DecodeSection), so both report alike.
func Decode(prefix string, section map[string]any, out any) error {
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "koanf",
		Metadata:         &md,
		WeaklyTypedInput: true,
		Result:           out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.TextUnmarshallerHookFunc(), // ByteSize
			mapstructure.StringToSliceHookFunc(","),
		),
	})
	if err != nil {
		return fmt.Errorf("%s: build decoder: %w", cmpOr(prefix, "config"), err)
	}
	var problems []string
	if section != nil {
		if err := dec.Decode(section); err != nil {
			problems = decodeProblems(prefix, err)
		}
	}
	for _, key := range md.Unused {
		problems = append(problems, fmt.Sprintf("%s: unknown key", keyPath(prefix, dotted(key))))
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return errors.New(strings.Join(problems, "; "))
}

// decodeProblems flattens mapstructure's joined errors into one message per
// field, each starting with the full key.
func decodeProblems(prefix string, err error) []string {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		return []string{fmt.Sprintf("%s: %v", keyPath(prefix, dotted(de.Name())), de.Unwrap())}
	}
	// Decode wraps several problems ("decoding failed due to ...") around
	// an errors.Join.
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, decodeProblems(prefix, e)...)
		}
		return out
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		return []string{fmt.Sprintf("%s: %v", keyPath(prefix, dotted(de.Name())), de.Unwrap())}
	}
	return []string{fmt.Sprintf("%s: %v", cmpOr(prefix, "config"), err)}
}

func keyPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mapKey matches mapstructure's "[key]" for a map key that is not a list index.
var mapKey = regexp.MustCompile(`\[([^\]]*[^0-9\]][^\]]*)\]`)

// dotted writes map keys as chat.yaml paths do: users[alice].name → users.alice.name.
func dotted(key string) string { return mapKey.ReplaceAllString(key, ".$1") }
