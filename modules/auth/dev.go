package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/mux"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
)

// DevTokenPath is the development issuer's route.
const DevTokenPath = "/api/dev/token"

const (
	// maxDevBody is plenty for {"userId":"<128 chars>"}.
	maxDevBody = 4 << 10
	// timeFormat is the API's RFC 3339 with milliseconds, in UTC.
	timeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// DevIssuerParams are the dependencies of NewDevIssuer.
type DevIssuerParams struct {
	fx.In
	Cfg      config.Auth
	Verifier *Verifier
	Log      *slog.Logger
}

// DevIssuer mints HS256 tokens for any user id, for local development only.
// They carry iss and aud when configured, the kid DevKID and the claim
// "dev": true, and are signed with the Verifier's development key, so that
// they stop verifying as soon as auth.dev is off.
type DevIssuer struct {
	secret   []byte
	ttl      time.Duration
	issuer   string
	audience string
	now      func() time.Time
}

// NewDevIssuer builds the issuer from the Verifier's development key. It
// refuses to exist when auth.dev.enabled is false, and logs a loud warning
// when it does.
func NewDevIssuer(p DevIssuerParams) (*DevIssuer, error) {
	if !p.Cfg.Dev.Enabled {
		return nil, errors.New("auth.dev.enabled is false: the development token issuer is off")
	}
	if p.Verifier == nil || p.Verifier.devKey == nil {
		return nil, errors.New("auth.dev: the verifier has no development key (it was built with auth.dev.enabled false)")
	}
	ttl := p.Cfg.Dev.TokenTTL
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	secretSource := "a key derived from auth.jwt.hmac_secret"
	if p.Cfg.JWT.HMACSecret == "" {
		secretSource = "a random per-process secret (tokens stop verifying on restart and on other instances)"
	}
	log.Warn("DEVELOPMENT TOKEN ISSUER ENABLED: POST "+DevTokenPath+" hands out a valid token for ANY user id; set auth.dev.enabled: false in production",
		"route", DevTokenPath, "token_ttl", ttl, "signed_with", secretSource)
	return &DevIssuer{
		secret:   p.Verifier.devKey,
		ttl:      ttl,
		issuer:   p.Verifier.issuer,
		audience: p.Verifier.audience,
		now:      time.Now,
	}, nil
}

// RegisterDevRoutes mounts POST /api/dev/token. Other methods get the
// router's 405; when the issuer is disabled nothing is mounted (404).
func RegisterDevRoutes(r *mux.Router, d *DevIssuer) {
	r.Handle(DevTokenPath, d).Methods(http.MethodPost)
}

// Issue mints a token for userID and returns it with its expiry (whole
// seconds, as in the token's exp).
func (d *DevIssuer) Issue(userID string) (string, time.Time, error) {
	if !ValidUserID(userID) {
		return "", time.Time{}, fmt.Errorf("user id %q does not match %s", userID, userIDPattern)
	}
	now := d.now()
	exp := jwt.NewNumericDate(now.Add(d.ttl)) // truncated to the second, like every NumericDate
	rc := claims{Dev: true, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   userID,
		Issuer:    d.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: exp,
	}}
	if d.audience != "" {
		rc.Audience = jwt.ClaimStrings{d.audience}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, rc)
	t.Header["kid"] = DevKID
	token, err := t.SignedString(d.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign development token: %w", err)
	}
	return token, exp.Time, nil
}

type devTokenRequest struct {
	UserID *string `json:"userId"`
}

type devTokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// ServeHTTP answers POST /api/dev/token: strict JSON {"userId":"alice"} →
// 200 {"token":"<jwt>","expiresAt":"<RFC 3339 ms UTC>"}.
func (d *DevIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isJSON(r.Header.Get("Content-Type")) {
		problem.Error(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
		return
	}
	raw, err := httpserver.ReadBody(w, r, maxDevBody, 10*time.Second)
	if err != nil {
		if httpserver.IsBodyTooLarge(err) {
			httpserver.WriteBodyTooLarge(w, maxDevBody)
			return
		}
		problem.Error(w, http.StatusBadRequest, "invalid_json", "could not read the body")
		return
	}
	var req devTokenRequest
	if p := problem.DecodeJSON(raw, &req); p != nil {
		problem.Write(w, *p)
		return
	}
	if req.UserID == nil || !ValidUserID(*req.UserID) {
		problem.Error(w, http.StatusBadRequest, "invalid_user_id", "userId must match "+userIDPattern.String())
		return
	}
	token, exp, err := d.Issue(*req.UserID)
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, "internal", "could not sign the token")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(devTokenResponse{Token: token, ExpiresAt: exp.UTC().Format(timeFormat)}) // the status is sent; a gone client is not ours to report
}

// isJSON accepts application/json with no charset or utf-8.
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}
