package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/ident"
)

// Errors Verify wraps; errors.Is also matches jwt/v5's own errors
// (jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet, jwt.ErrTokenSignatureInvalid, ...).
var (
	// ErrInvalidToken wraps every verification failure.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownKID is a `kid` header naming no configured key.
	ErrUnknownKID = errors.New("unknown kid")
	// ErrDevToken is a development token presented while auth.dev is off,
	// or one not signed by the development key.
	ErrDevToken = errors.New("development token refused")
)

// DevKID is the `kid` header of development tokens. They are HS256 tokens
// signed with a key of their own (not auth.jwt.hmac_secret) and carry the
// claim "dev": true, so that a verifier with auth.dev off refuses them.
const DevKID = "chat-dev"

const (
	// minHMACSecret matches config's rule for auth.jwt.hmac_secret.
	minHMACSecret = 32
	// minRSABits refuses keys too weak to sign anything.
	minRSABits = 2048
	// maxTokenBytes bounds the work a hostile token can cause.
	maxTokenBytes = 8 << 10
)

// VerifierParams are the dependencies of NewVerifier.
type VerifierParams struct {
	fx.In
	Cfg config.Auth
}

// Verifier checks client JWTs. It is safe for concurrent use.
type Verifier struct {
	hmacSecret []byte                     // auth.jwt.hmac_secret; nil when unset
	hmacParser *jwt.Parser                // HS256 only
	devKey     []byte                     // signs development tokens; nil unless auth.dev.enabled
	devParser  *jwt.Parser                // HS256 only
	keys       map[string]verificationKey // kid -> public key
	issuer     string
	audience   string
	leeway     time.Duration
	// verified remembers tokens that passed Verify, until they expire, so
	// that a client's every REST request does not pay again for the
	// signature check and the JSON decoding of the claims (a tenth of the
	// service's CPU per REST send in the profile). Failures are not kept.
	verified *otter.Cache[string, Principal]
}

// How many verified tokens are remembered, and for how long at most.
const (
	verifiedSize = 10_000
	verifiedTTL  = 10 * time.Minute
)

// verificationKey is one public key with the one algorithm it may verify.
type verificationKey struct {
	key    any
	alg    string
	parser *jwt.Parser
}

// NewVerifier loads auth.jwt: the HMAC secret and the PEM public keys. A
// missing or unusable key file is an error naming auth.jwt.public_keys.<kid>.
// With auth.dev.enabled and no hmac_secret, a random per-process secret is
// made for the dev issuer (its tokens die with the process). With
// auth.dev.enabled, development tokens are checked with a key of their own:
// derived from hmac_secret (so every instance of a shared test setup agrees),
// or random per process when there is none.
func NewVerifier(p VerifierParams) (*Verifier, error) {
	jc := p.Cfg.JWT
	v := &Verifier{keys: make(map[string]verificationKey, len(jc.PublicKeys)), issuer: jc.Issuer, audience: jc.Audience, leeway: jc.Leeway}
	verified, err := otter.New(&otter.Options[string, Principal]{
		MaximumSize: verifiedSize,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, Principal]) time.Duration {
			return min(time.Until(e.Value.ExpiresAt), verifiedTTL)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("auth: verified-token cache: %w", err)
	}
	v.verified = verified
	if jc.HMACSecret != "" {
		if len(jc.HMACSecret) < minHMACSecret {
			return nil, fmt.Errorf("auth.jwt.hmac_secret: must be at least %d bytes, got %d", minHMACSecret, len(jc.HMACSecret))
		}
		v.hmacSecret = []byte(jc.HMACSecret)
		v.hmacParser = v.newParser(jwt.SigningMethodHS256.Alg())
	}
	if p.Cfg.Dev.Enabled {
		if v.hmacSecret != nil {
			mac := hmac.New(sha256.New, v.hmacSecret)
			mac.Write([]byte("chat-service development token key v1"))
			v.devKey = mac.Sum(nil)
		} else {
			v.devKey = make([]byte, 32)
			_, _ = rand.Read(v.devKey) // crypto/rand.Read never returns an error (it aborts the process instead)
		}
		v.devParser = v.newParser(jwt.SigningMethodHS256.Alg())
	}

	kids := make([]string, 0, len(jc.PublicKeys))
	for kid := range jc.PublicKeys {
		kids = append(kids, kid)
	}
	sort.Strings(kids) // report the first bad key deterministically
	for _, kid := range kids {
		if strings.TrimSpace(kid) == "" {
			return nil, errors.New("auth.jwt.public_keys: a key id (kid) must not be empty")
		}
		key, alg, err := loadPublicKey(jc.PublicKeys[kid])
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.public_keys.%s: %w", kid, err)
		}
		v.keys[kid] = verificationKey{key: key, alg: alg, parser: v.newParser(alg)}
	}
	if v.hmacSecret == nil && len(v.keys) == 0 && v.devKey == nil {
		return nil, errors.New("auth.jwt: no way to verify tokens: set hmac_secret or public_keys (or auth.dev.enabled for local use)")
	}
	return v, nil
}

func (v *Verifier) newParser(alg string) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithLeeway(v.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	return jwt.NewParser(opts...)
}

// loadPublicKey reads one PEM file: a PKIX "PUBLIC KEY", a PKCS#1 "RSA PUBLIC
// KEY" or a "CERTIFICATE". The key type decides the only algorithm it verifies.
func loadPublicKey(path string) (any, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read PEM file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", fmt.Errorf("%s holds no PEM block", path)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, "", fmt.Errorf("%s is a private key; configure the public key", path)
		}
		return nil, "", fmt.Errorf("%s: PEM block %q is not a public key or certificate", path, block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse %s: %w", path, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, "", fmt.Errorf("%s: RSA key of %d bits, want at least %d", path, k.N.BitLen(), minRSABits)
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("%s: EC key on %s, want P-256 (ES256)", path, k.Curve.Params().Name)
		}
		return k, jwt.SigningMethodES256.Alg(), nil
	default:
		return nil, "", fmt.Errorf("%s: unsupported key type %T, want RSA (RS256) or EC P-256 (ES256)", path, pub)
	}
}

// claims are the registered claims this service reads, and the mark of a
// development token.
type claims struct {
	jwt.RegisteredClaims
	Dev bool `json:"dev,omitempty"`
}

// Verify checks token's signature, exp (required) and nbf/iat with
// auth.jwt.leeway, iss and aud when configured, and that `sub` is a valid
// user id. Every error wraps ErrInvalidToken; none contains the token.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	if len(token) > maxTokenBytes {
		return Principal{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}
	if p, ok := v.verified.GetIfPresent(token); ok && time.Now().Before(p.ExpiresAt) {
		return p, nil
	}
	parser, key, dev, err := v.selectKey(token)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var c claims
	if _, err := parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	switch {
	case c.Dev != dev: // a dev mark outside the dev key, or the dev key without the mark
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrDevToken)
	case c.Subject == "":
		return Principal{}, fmt.Errorf("%w: no sub claim", ErrInvalidToken)
	case !ident.ValidUserID(c.Subject):
		return Principal{}, fmt.Errorf("%w: sub is not a valid user id", ErrInvalidToken)
	}
	p := Principal{UserID: c.Subject, ExpiresAt: c.ExpiresAt.Time}
	v.verified.Set(token, p) // exp is required: the parser refused a token without it
	return p, nil
}

// selectKey reads the unverified header and picks the parser and key that
// may check the token (see the package comment); dev is true for the
// development key.
func (v *Verifier) selectKey(token string) (parser *jwt.Parser, key any, dev bool, err error) {
	unverified, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return nil, nil, false, err
	}
	kid, ok := unverified.Header["kid"].(string)
	if _, present := unverified.Header["kid"]; present && !ok {
		return nil, nil, false, fmt.Errorf("%w: kid header is not a string", jwt.ErrTokenMalformed)
	}
	if kid == DevKID {
		if v.devKey == nil {
			return nil, nil, false, fmt.Errorf("%w: auth.dev is off", ErrDevToken)
		}
		return v.devParser, v.devKey, true, nil
	}
	if k, ok := v.keys[kid]; ok && kid != "" {
		return k.parser, k.key, false, nil
	}
	alg, _ := unverified.Header["alg"].(string)
	if alg == jwt.SigningMethodHS256.Alg() && v.hmacParser != nil {
		return v.hmacParser, v.hmacSecret, false, nil
	}
	if kid != "" {
		return nil, nil, false, fmt.Errorf("%w %q", ErrUnknownKID, kid)
	}
	if alg == "" || strings.EqualFold(alg, "none") {
		return nil, nil, false, fmt.Errorf("%w: alg %q is never accepted", jwt.ErrTokenUnverifiable, alg)
	}
	return nil, nil, false, fmt.Errorf("%w: no key for alg %q without a kid header", jwt.ErrTokenUnverifiable, alg)
}
