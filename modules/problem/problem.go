// Package problem writes RFC 9457 problem documents, the one error format of
// every HTTP edge (REST handlers, auth middleware, the router's 404/405, body limits).
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem document with the API's `code` extension.
type Problem struct {
	Type            string `json:"type"`
	Title           string `json:"title"`
	Status          int    `json:"status"`
	Code            string `json:"code"`
	Detail          string `json:"detail,omitempty"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
	RetryAfter      int    `json:"retryAfter,omitempty"`
}

// New builds a problem for status with an API code and a human detail.
func New(status int, code, detail string) Problem {
	return Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// Write sends p. A RetryAfter also sets the Retry-After header; a 401 sets
// WWW-Authenticate: Bearer.
func Write(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="chat-service"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p) // the status is already sent; a broken client connection is not ours to report
}

// Error is shorthand for Write(w, New(status, code, detail)).
func Error(w http.ResponseWriter, status int, code, detail string) {
	Write(w, New(status, code, detail))
}
