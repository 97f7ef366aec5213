// Package auth verifies client JWTs (golang-jwt/jwt/v5), carries the
// authenticated Principal in request contexts, guards REST routes with
// Middleware and, only when auth.dev.enabled, issues development tokens at
// POST /api/dev/token.
//
// Which key checks a token:
//  0. the `kid` DevKID selects the development key, which exists only while
//     auth.dev.enabled (and only that key accepts a token marked "dev");
//  1. a `kid` header naming a key in auth.jwt.public_keys selects that key,
//     and only its algorithm (RSA key: RS256; EC P-256 key: ES256);
//  2. otherwise an HS256 token is checked with auth.jwt.hmac_secret;
//  3. anything else is rejected (unknown kid, RS256/ES256 without kid, alg none).
//
// Every path pins its algorithm, so an HS256 token "signed" with a public
// key's PEM bytes never verifies.
package auth

import (
	"errors"
	"log/slog"

	"github.com/gorilla/mux"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
)

// Module provides *Verifier and, when auth.dev.enabled, registers
// POST /api/dev/token on the shared router (with a loud warning).
var Module = fx.Module("auth",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "auth") }),
	fx.Provide(NewVerifier),
	fx.Invoke(registerDev),
)

// devParams are what registerDev needs; the router is optional so the
// module also works without httpserver while the issuer is disabled.
type devParams struct {
	fx.In
	Cfg      config.Auth
	Verifier *Verifier
	Router   *mux.Router `optional:"true"`
	Log      *slog.Logger
}

var errAuthNoRouter = errors.New("auth.dev.enabled: POST /api/dev/token needs the httpserver module's router")

// registerDev mounts the development issuer only when auth.dev.enabled.
func registerDev(p devParams) error {
	if !p.Cfg.Dev.Enabled {
		return nil
	}
	d, err := NewDevIssuer(DevIssuerParams{Cfg: p.Cfg, Verifier: p.Verifier, Log: p.Log})
	if err != nil {
		return err
	}
	if p.Router == nil {
		return errAuthNoRouter
	}
	RegisterDevRoutes(p.Router, d)
	return nil
}
