package profiles

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// DecodeSection strictly decodes a plugin's raw profiles.<plugin> section
// into out (a pointer to a struct whose fields carry `koanf:"key"` tags, like
// the config package). Fields absent from the section keep the values out
// already has, so a plugin sets its defaults first. Durations accept "5m";
// values from environment variables (strings) are converted. An unknown key
// or a value of the wrong type is an error naming the full key, e.g.
// "profiles.flairbit.service_auth.ttl: ...", all problems on one line.
func DecodeSection(plugin string, section map[string]any, out any) error {
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "koanf",
		Metadata:         &md,
		WeaklyTypedInput: true,
		Result:           out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			mapstructure.TextUnmarshallerHookFunc(),
		),
	})
	if err != nil {
		return fmt.Errorf("profiles.%s: build decoder: %w", plugin, err)
	}
	var problems []string
	if section != nil {
		if err := dec.Decode(section); err != nil {
			problems = append(problems, decodeProblems(plugin, err)...)
		}
	}
	unused := slices.Clone(md.Unused)
	slices.Sort(unused)
	for _, key := range unused {
		problems = append(problems, fmt.Sprintf("profiles.%s.%s: unknown key", plugin, dotted(key)))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// decodeProblems flattens mapstructure's joined errors into one message per
// field, each prefixed with the full key.
func decodeProblems(plugin string, err error) []string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range joined.Unwrap() {
			out = append(out, decodeProblems(plugin, e)...)
		}
		return out
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		return []string{fmt.Sprintf("profiles.%s.%s: %v", plugin, dotted(de.Name()), de.Unwrap())}
	}
	return []string{fmt.Sprintf("profiles.%s: %v", plugin, err)}
}

// mapKey matches mapstructure's "[key]" for a map key that is not a list index.
var mapKey = regexp.MustCompile(`\[([^\]]*[^0-9\]][^\]]*)\]`)

// dotted writes map keys as chat.yaml paths do: users[alice].name → users.alice.name.
func dotted(key string) string { return mapKey.ReplaceAllString(key, ".$1") }
