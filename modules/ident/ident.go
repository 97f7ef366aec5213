// Package ident holds the API's identity rules, each written once: the
// user-id and session-id formats, bearer-token parsing and the
// authenticated Principal. It imports nothing of ours, so auth, chat, the
// edges and presence all share it without pulling in one another.
package ident

import (
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Principal is the authenticated caller, whichever way it authenticated
// (REST middleware, WebSocket upgrade, STOMP CONNECT).
type Principal struct {
	UserID    string    // the token's `sub`
	ExpiresAt time.Time // the token's `exp`; zero: never. A long-lived connection ends its session then
}

// userIDPattern is the API's user id rule (docs/api.md, "Conventions").
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,128}$`)

// UserIDPattern is the user id rule as text, for error details.
func UserIDPattern() string { return userIDPattern.String() }

// ValidUserID reports whether s is a well-formed user id.
func ValidUserID(s string) bool { return userIDPattern.MatchString(s) }

// ValidSessionID reports whether id is a well-formed session id: a UUID in
// its canonical 36-character form.
func ValidSessionID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

// ParseBearer parses an Authorization value ("Bearer <token>", scheme in any
// case), as found in an HTTP header or a STOMP frame header.
func ParseBearer(value string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}

// TokenOf is ParseBearer that also takes a bare token without the scheme,
// as STOMP clients put it in CONNECT's Authorization header. "" means none.
func TokenOf(value string) string {
	if t, ok := ParseBearer(value); ok {
		return t
	}
	v := strings.TrimSpace(value)
	if strings.ContainsAny(v, " \t\r\n") {
		return ""
	}
	return v
}
