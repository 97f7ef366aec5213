package flairbit_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/profiles/profilestest"
)

// Keys are slow to generate under -race: one per test binary.
var (
	testKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(2048) })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(2048) })
)

func mustKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// writePEM writes a PEM block to a temporary file and returns its path.
func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func keyFile(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	return writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
}

// fakeFlairBit is FlairBit's /internal/chat-service API over the
// profilestest fixture. It verifies every service JWT as FlairBit would:
// RS256 signature with the public key named by kid, iss, aud, exp (required,
// at most 10 minutes after iat) and iat, and answers 401 otherwise.
type fakeFlairBit struct {
	t    *testing.T
	keys map[string]*rsa.PublicKey // kid → public key
	iss  string
	aud  string

	users  map[string]profiles.Profile
	denied map[[2]string]bool

	mu       sync.Mutex
	tokens   []string
	requests []*http.Request
	rejected int
	handler  http.HandlerFunc // when set, answers instead (after auth)
}

func newFakeFlairBit(t *testing.T) (*fakeFlairBit, *httptest.Server) {
	f := &fakeFlairBit{
		t:      t,
		keys:   map[string]*rsa.PublicKey{"chat-1": &testKey().PublicKey},
		iss:    "chat-service",
		aud:    "flairbit",
		users:  map[string]profiles.Profile{},
		denied: map[[2]string]bool{},
	}
	for _, u := range profilestest.Users {
		f.users[u.UserID] = u
	}
	for _, d := range profilestest.DeniedPairs {
		f.denied[[2]string{d[0], d[1]}] = true
		f.denied[[2]string{d[1], d[0]}] = true
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFlairBit) setHandler(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

func (f *fakeFlairBit) Tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

func (f *fakeFlairBit) Requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

func (f *fakeFlairBit) Rejected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rejected
}

func (f *fakeFlairBit) verify(r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return fmt.Errorf("no bearer token")
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		k, ok := f.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(f.iss),
		jwt.WithAudience(f.aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	if err != nil {
		return err
	}
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 10*time.Minute {
		return fmt.Errorf("token lifetime too long or no iat")
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, raw)
	f.mu.Unlock()
	return nil
}

func (f *fakeFlairBit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	h := f.handler
	f.mu.Unlock()
	if err := f.verify(r); err != nil {
		f.mu.Lock()
		f.rejected++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid service token"}) // best effort
		return
	}
	if h != nil {
		h(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/internal/chat-service/profiles":
		list := []profiles.Profile{}
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if p, ok := f.users[id]; ok {
				list = append(list, p)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"profiles": list}) // the client sees a short body
	case "/internal/chat-service/can-chat":
		q := r.URL.Query()
		_ = json.NewEncoder(w).Encode(map[string]bool{"allowed": !f.denied[[2]string{q.Get("from"), q.Get("to")}]}) // as above
	default:
		http.NotFound(w, r)
	}
}

func writeBytes(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
