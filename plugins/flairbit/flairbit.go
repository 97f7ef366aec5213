// Package flairbit is the profile plugin for FlairBit: it fetches profiles
// and pairing decisions from FlairBit's /internal/chat-service endpoints
// (docs/flairbit.md), authenticating each call with a short-lived RS256
// service JWT that chat-service signs itself. It registers "flairbit".
package flairbit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chat-service/chat/modules/profiles"
)

// Name is the plugin's name in profiles.provider and its section key.
const Name = "flairbit"

// Bounds on service_auth.ttl: long enough to reuse a token across many
// calls, short enough that a leaked one is soon useless.
const (
	MinTokenTTL = 10 * time.Second
	MaxTokenTTL = time.Hour
	minRSABits  = 2048
)

func init() {
	profiles.Register(Name, func(section map[string]any, env profiles.Env) (profiles.Provider, error) {
		cfg := DefaultConfig()
		if err := profiles.DecodeSection(Name, section, &cfg); err != nil {
			return nil, err
		}
		return New(cfg, env)
	})
}

// Config is the profiles.flairbit section.
type Config struct {
	// BaseURL is FlairBit's base URL, e.g. https://flairbit.internal; the
	// endpoints are under {base_url}/internal/chat-service/.
	BaseURL     string      `koanf:"base_url"`
	ServiceAuth ServiceAuth `koanf:"service_auth"`
}

// ServiceAuth configures the service JWTs chat-service signs.
type ServiceAuth struct {
	PrivateKeyFile string        `koanf:"private_key_file"` // RS256 private key, PEM (PKCS#1 or PKCS#8)
	KeyID          string        `koanf:"key_id"`           // kid header: which public key FlairBit verifies with
	Issuer         string        `koanf:"issuer"`           // iss (and sub)
	Audience       string        `koanf:"audience"`         // aud
	TTL            time.Duration `koanf:"ttl"`              // exp - iat of one token
}

// DefaultConfig holds the defaults of the keys chat.yaml may leave out.
func DefaultConfig() Config {
	return Config{ServiceAuth: ServiceAuth{Issuer: "chat-service", Audience: "flairbit", TTL: 5 * time.Minute}}
}

// validate checks everything but the key file and returns the normalized
// base URL (no trailing slash).
func (c Config) validate() (string, error) {
	base := strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if base == "" {
		return "", errors.New("profiles.flairbit.base_url: required (e.g. https://flairbit.internal)")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("profiles.flairbit.base_url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("profiles.flairbit.base_url: want http(s)://host[:port][/path] without credentials, query or fragment, got %q", c.BaseURL)
	}
	sa := c.ServiceAuth
	switch {
	case sa.PrivateKeyFile == "":
		return "", errors.New("profiles.flairbit.service_auth.private_key_file: required (RS256 private key, PEM)")
	case sa.KeyID == "":
		return "", errors.New("profiles.flairbit.service_auth.key_id: required (the kid FlairBit picks the public key by)")
	case sa.Issuer == "":
		return "", errors.New("profiles.flairbit.service_auth.issuer: required")
	case sa.Audience == "":
		return "", errors.New("profiles.flairbit.service_auth.audience: required")
	case sa.TTL < MinTokenTTL || sa.TTL > MaxTokenTTL:
		return "", fmt.Errorf("profiles.flairbit.service_auth.ttl: want between %s and %s, got %s", MinTokenTTL, MaxTokenTTL, sa.TTL)
	}
	return base, nil
}

// LoadPrivateKey reads an RSA private key from a PEM file (PKCS#1 "RSA
// PRIVATE KEY" or PKCS#8 "PRIVATE KEY", at least 2048 bits). Errors name
// profiles.flairbit.service_auth.private_key_file and never include key bytes.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	const key = "profiles.flairbit.service_auth.private_key_file"
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: %s holds no PEM block", key, path)
	}
	var parsed any
	switch block.Type {
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return nil, fmt.Errorf("%s: %s holds an EC key; service JWTs are RS256 and need an RSA key", key, path)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%s: %s holds an encrypted key; give an unencrypted PEM", key, path)
	default:
		return nil, fmt.Errorf("%s: %s holds a PEM block of type %q, want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", key, path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: parse %s: %w", key, path, err)
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("%s: %s holds a %d-bit RSA key, want at least %d bits", key, path, bits, minRSABits)
		}
		return k, nil
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		return nil, fmt.Errorf("%s: %s holds a %T; service JWTs are RS256 and need an RSA key", key, path, k)
	default:
		return nil, fmt.Errorf("%s: %s holds a %T, want an RSA key", key, path, k)
	}
}
