package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	chatservice "github.com/chat-service/chat"
)

// DefaultPath is the file read when -config is not given. Unlike an explicit
// path, it may be missing: the embedded defaults then apply alone.
const DefaultPath = "chat.yaml"

// EnvPrefix starts every environment override (CHAT_STORAGE__DSN).
const EnvPrefix = "CHAT_"

// Source says where configuration comes from, lowest precedence first:
// the embedded defaults, then File, then Env, then Set.
type Source struct {
	File         string   // path of chat.yaml; "" means DefaultPath
	FileRequired bool     // true when the path was given explicitly
	Env          []string // KEY=VALUE pairs; nil means os.Environ()
	Set          []string // key.path=value pairs from -set flags
}

// Defaults is the shipped chat.yaml alone, decoded and validated: what every
// module gets when the operator changes nothing. This is the one home of
// default values; modules take the values they are given and do not default
// them again. Tests start from Defaults and change what they test. The
// embedded file always loads (TestDefaultsAreTheShippedFile), so a failure
// here is a build mistake and panics.
func Defaults() Config {
	k, err := embedded()
	if err != nil {
		panic(err)
	}
	var cfg Config
	if err := decode(k, &cfg); err != nil {
		panic(err)
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return cfg
}

func embedded() (*koanf.Koanf, error) {
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(chatservice.DefaultConfig), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config: embedded defaults: %w", err)
	}
	return k, nil
}

// Load reads the configuration and validates it. Errors name the key.
func Load(src Source) (Config, error) {
	k, err := embedded()
	if err != nil {
		return Config{}, err
	}
	path := src.File
	if path == "" {
		path = DefaultPath
	}
	if _, err := os.Stat(path); err == nil || src.FileRequired {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config: read %s: %w", path, err)
		}
	}
	environ := src.Env
	if environ == nil {
		environ = os.Environ()
	}
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		EnvironFunc:   func() []string { return environ },
		TransformFunc: envKey,
	}), nil); err != nil {
		return Config{}, fmt.Errorf("config: environment: %w", err)
	}
	set := map[string]any{}
	for _, kv := range src.Set {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return Config{}, fmt.Errorf("config: -set %q: want key.path=value", kv)
		}
		set[strings.TrimSpace(key)] = val
	}
	if err := k.Load(confmap.Provider(set, "."), nil); err != nil {
		return Config{}, fmt.Errorf("config: flags: %w", err)
	}
	if err := checkKeys(k.Keys()); err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := decode(k, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// envKey maps CHAT_STORAGE__DSN to storage.dsn.
func envKey(k, v string) (string, any) {
	k = strings.ToLower(strings.TrimPrefix(k, EnvPrefix))
	return strings.ReplaceAll(k, "__", "."), v
}

func decode(k *koanf.Koanf, cfg *Config) error {
	if err := Decode("", k.Raw(), cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// checkKeys refuses keys that no Config field (and no plugin section) owns.
func checkKeys(keys []string) error {
	known, open := map[string]bool{}, []string{}
	walk(reflect.TypeOf(Config{}), "", known, &open)
	var bad []string
	for _, key := range keys {
		if known[key] || underAny(key, open) || pluginSection(key, known) {
			continue
		}
		msg := fmt.Sprintf("unknown key %q", key)
		if s := closest(key, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		bad = append(bad, msg)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("config: %s", strings.Join(bad, "; "))
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func walk(t reflect.Type, prefix string, known map[string]bool, open *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "" {
			continue // ",remain": plugin sections, checked by pluginSection
		}
		path := prefix + name
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			walk(f.Type, path+".", known, open)
		case f.Type.Kind() == reflect.Map:
			known[path] = true
			*open = append(*open, path+".")
		default:
			known[path] = true
		}
	}
}

func underAny(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// pluginSection accepts profiles.<name>.* for any name that is not a core
// profiles key: the section belongs to a plugin, which decodes it strictly;
// modules/platform refuses sections no linked plugin owns.
func pluginSection(key string, known map[string]bool) bool {
	rest, ok := strings.CutPrefix(key, "profiles.")
	if !ok {
		return false
	}
	name, _, nested := strings.Cut(rest, ".")
	if !nested {
		return false
	}
	for k := range known {
		if k == "profiles."+name || strings.HasPrefix(k, "profiles."+name+".") {
			return false
		}
	}
	return true
}

// closest suggests a known key within a small edit distance of a typo.
func closest(key string, known map[string]bool) string {
	best, bestD := "", 4
	for k := range known {
		if d := distance(key, k); d < bestD || (d == bestD && best != "" && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
