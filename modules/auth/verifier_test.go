package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/problem"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	v := newTestVerifier(t, testConfig(t))
	now := time.Now()
	ok := validClaims("alice")
	rsaPEM := publicPEM(t, &k.rsa.PublicKey)

	tests := []struct {
		name    string
		token   string
		wantErr error // nil: accepted; ErrInvalidToken at least otherwise
	}{
		{name: "HS256", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", ok)},
		{name: "HS256 with a kid no public key has", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "hmac-1", ok)},
		{name: "RS256 with kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, rsaKID, ok)},
		{name: "ES256 with kid", token: sign(t, jwt.SigningMethodES256, k.ec, ecKID, ok)},
		{name: "user id with every allowed character", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims("a.b_c@d:e-F9"))},
		{name: "audience list containing ours", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"aud": []string{"other", testAudience}}))},
		{name: "expired within leeway", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"exp": now.Add(-2 * time.Second).Unix()}))},

		{name: "expired", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), wantErr: jwt.ErrTokenExpired},
		{name: "expired RS256", token: sign(t, jwt.SigningMethodRS256, k.rsa, rsaKID, with(ok, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), wantErr: jwt.ErrTokenExpired},
		{name: "no exp", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"exp": nil})), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "not yet valid", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()})), wantErr: jwt.ErrTokenNotValidYet},
		{name: "issued in the future", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"iat": now.Add(time.Minute).Unix()})), wantErr: jwt.ErrTokenUsedBeforeIssued},
		{name: "wrong issuer", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"iss": "https://evil.test"})), wantErr: jwt.ErrTokenInvalidIssuer},
		{name: "no issuer", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"iss": nil})), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong audience", token: sign(t, jwt.SigningMethodES256, k.ec, ecKID, with(ok, jwt.MapClaims{"aud": "someone-else"})), wantErr: jwt.ErrTokenInvalidAudience},
		{name: "no audience", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"aud": nil})), wantErr: jwt.ErrTokenRequiredClaimMissing},

		{name: "wrong HMAC secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-0123456789"), "", ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "wrong RSA key", token: sign(t, jwt.SigningMethodRS256, k.otherRSA, rsaKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "wrong EC key", token: sign(t, jwt.SigningMethodES256, k.otherEC, ecKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 under the EC kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, ecKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "ES256 under the RSA kid", token: sign(t, jwt.SigningMethodES256, k.ec, rsaKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "PS256 with the RSA key", token: sign(t, jwt.SigningMethodPS256, k.rsa, rsaKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "unknown kid", token: sign(t, jwt.SigningMethodRS256, k.otherRSA, "rsa-2", ok), wantErr: ErrUnknownKID},
		{name: "RS256 without kid", token: sign(t, jwt.SigningMethodRS256, k.rsa, "", ok), wantErr: jwt.ErrTokenUnverifiable},
		{name: "non-string kid", token: signHeader(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": 7}, ok, []byte(testSecret)), wantErr: jwt.ErrTokenMalformed},

		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", ok), wantErr: ErrInvalidToken},
		{name: "alg none with kid", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, rsaKID, ok), wantErr: ErrInvalidToken},
		{name: "alg NONE spelled oddly", token: signHeader(t, map[string]any{"alg": "NoNe", "typ": "JWT"}, ok, nil), wantErr: ErrInvalidToken},
		{name: "HS256 keyed with the RSA public PEM, RSA kid", token: sign(t, jwt.SigningMethodHS256, rsaPEM, rsaKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the RSA public PEM, no kid", token: sign(t, jwt.SigningMethodHS256, rsaPEM, "", ok), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 keyed with the RSA public DER, RSA kid", token: sign(t, jwt.SigningMethodHS256, pemBytes(t, rsaPEM), rsaKID, ok), wantErr: jwt.ErrTokenSignatureInvalid},

		{name: "missing sub", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"sub": nil})), wantErr: ErrInvalidToken},
		{name: "empty sub", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims("")), wantErr: ErrInvalidToken},
		{name: "sub with a space", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims("al ice")), wantErr: ErrInvalidToken},
		{name: "sub with a slash", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims("a/b")), wantErr: ErrInvalidToken},
		{name: "sub too long", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(strings.Repeat("a", 129))), wantErr: ErrInvalidToken},
		{name: "sub not a string", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"sub": 42})), wantErr: ErrInvalidToken},

		{name: "empty", token: "", wantErr: ErrInvalidToken},
		{name: "garbage", token: "not-a-jwt", wantErr: jwt.ErrTokenMalformed},
		{name: "three garbage parts", token: "a.b.c", wantErr: jwt.ErrTokenMalformed},
		{name: "huge", token: strings.Repeat("a", maxTokenBytes+1), wantErr: ErrInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(tc.token)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.UserID == "" || p.ExpiresAt.IsZero() {
					t.Fatalf("principal %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token as %+v", p)
			}
			if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want ErrInvalidToken and %v", err, tc.wantErr)
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Fatalf("error contains the token")
			}
		})
	}
}

func TestVerifyPrincipal(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, testConfig(t))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims("bob"), jwt.MapClaims{"exp": exp.Unix()}))
	p, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "bob" || !p.ExpiresAt.Equal(exp) {
		t.Fatalf("principal = %+v, want bob until %s", p, exp)
	}
}

// TestVerifiedTokenExpires: a token verified once is answered from memory
// afterwards, but never past its exp (with no leeway then: the memory is
// only ever stricter), and a tampered copy is still checked in full.
func TestVerifiedTokenExpires(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.JWT.Leeway = 0
	v := newTestVerifier(t, cfg)
	exp := time.Now().Add(1500 * time.Millisecond)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims("carol"), jwt.MapClaims{"exp": exp.Unix()}))
	for range 3 {
		if p, err := v.Verify(tok); err != nil || p.UserID != "carol" {
			t.Fatalf("fresh token: %+v %v", p, err)
		}
	}
	if _, err := v.Verify(tok[:len(tok)-2] + "xx"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a tampered copy of a verified token: %v, want refused", err)
	}
	time.Sleep(time.Until(exp.Truncate(time.Second).Add(time.Second)) + 50*time.Millisecond)
	if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("the token after its exp: %v, want refused", err)
	}
}

// signHeader builds a token with an arbitrary header, HS256-signed with key
// (or with an empty signature when key is nil).
func signHeader(t *testing.T, header map[string]any, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	if key == nil {
		return signing + "."
	}
	sig, err := jwt.SigningMethodHS256.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func pemBytes(t *testing.T, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	return b.Bytes
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  config.Auth
		want []string
	}{
		{name: "missing file", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"k1": "/nonexistent/k1.pem"}}},
			want: []string{"auth.jwt.public_keys.k1", "/nonexistent/k1.pem"}},
		{name: "not PEM", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"k1": writeFile(t, "x.pem", []byte("hello"))}}},
			want: []string{"auth.jwt.public_keys.k1", "no PEM block"}},
		{name: "corrupt PEM", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"k1": writeFile(t, "x.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))}}},
			want: []string{"auth.jwt.public_keys.k1", "parse"}},
		{name: "private key", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"k1": writeFile(t, "x.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))}}},
			want: []string{"auth.jwt.public_keys.k1", "private key"}},
		{name: "weak RSA", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"k1": writeFile(t, "x.pem", publicPEM(t, &weak.PublicKey))}}},
			want: []string{"auth.jwt.public_keys.k1", "1024 bits"}},
		{name: "P-384", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"k1": writeFile(t, "x.pem", publicPEM(t, &p384.PublicKey))}}},
			want: []string{"auth.jwt.public_keys.k1", "P-384"}},
		{name: "empty kid", cfg: config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"": writeFile(t, "x.pem", publicPEM(t, &k.ec.PublicKey))}}},
			want: []string{"auth.jwt.public_keys", "kid"}},
		{name: "short secret", cfg: config.Auth{JWT: config.JWT{HMACSecret: "short"}},
			want: []string{"auth.jwt.hmac_secret", "32"}},
		{name: "nothing to verify with", cfg: config.Auth{},
			want: []string{"auth.jwt", "hmac_secret or public_keys"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewVerifier(VerifierParams{Cfg: tc.cfg})
			if err == nil {
				t.Fatal("NewVerifier succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPublicKeyFormats(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	v := newTestVerifier(t, config.Auth{JWT: config.JWT{PublicKeys: map[string]string{"pkcs1": writeFile(t, "rsa1.pem", pkcs1)}}})
	claims := with(validClaims("alice"), jwt.MapClaims{"iss": nil, "aud": nil})
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, "pkcs1", claims)); err != nil {
		t.Fatalf("PKCS#1 key: %v", err)
	}
	// Without a secret, no HS256 path exists at all.
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims)); err == nil {
		t.Fatal("HS256 accepted with no hmac_secret configured")
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		want    string
		wantOK  bool
	}{
		{name: "bearer", headers: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi", wantOK: true},
		{name: "lower-case scheme", headers: []string{"bearer abc"}, want: "abc", wantOK: true},
		{name: "extra spaces", headers: []string{"  Bearer   abc  "}, want: "abc", wantOK: true},
		{name: "absent"},
		{name: "basic", headers: []string{"Basic YWxpY2U6cHc="}},
		{name: "scheme only", headers: []string{"Bearer"}},
		{name: "scheme and space", headers: []string{"Bearer "}},
		{name: "two tokens", headers: []string{"Bearer a b"}},
		{name: "no scheme", headers: []string{"abc.def.ghi"}},
		{name: "repeated header", headers: []string{"Bearer a", "Bearer b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			got, ok := BearerToken(r)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("BearerToken = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestContextHelpers(t *testing.T) {
	t.Parallel()
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("principal in an empty context")
	}
	want := Principal{UserID: "alice", ExpiresAt: time.Unix(1e9, 0)}
	got, ok := FromContext(WithPrincipal(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("FromContext = %+v, %v", got, ok)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	v := newTestVerifier(t, testConfig(t))
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			t.Error("no principal in context")
		}
		_, _ = w.Write([]byte(p.UserID))
	}))
	ok := validClaims("alice")
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{name: "valid HS256", header: "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", ok), want: 200},
		{name: "valid RS256", header: "Bearer " + sign(t, jwt.SigningMethodRS256, k.rsa, rsaKID, ok), want: 200},
		{name: "missing header", want: 401},
		{name: "not bearer", header: "Basic YWxpY2U6cHc=", want: 401},
		{name: "bearer without token", header: "Bearer ", want: 401},
		{name: "garbage token", header: "Bearer garbage", want: 401},
		{name: "expired", header: "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})), want: 401},
		{name: "wrong key", header: "Bearer " + sign(t, jwt.SigningMethodRS256, k.otherRSA, rsaKID, ok), want: 401},
		{name: "alg none", header: "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", ok), want: 401},
		{name: "key confusion", header: "Bearer " + sign(t, jwt.SigningMethodHS256, publicPEM(t, &k.rsa.PublicKey), rsaKID, ok), want: 401},
		{name: "missing sub", header: "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(ok, jwt.MapClaims{"sub": nil})), want: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/api/chat/unread", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want == 200 {
				if w.Body.String() != "alice" {
					t.Fatalf("principal = %q", w.Body)
				}
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
				t.Errorf("Content-Type = %q", ct)
			}
			var p problem.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Status != 401 || p.Code != "unauthorized" || p.Detail == "" {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}
