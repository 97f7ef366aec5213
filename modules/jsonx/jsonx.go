// Package jsonx is the API's JSON, read and written one way by every edge:
// REST handlers and the development token issuer (through
// httpserver.ReadJSON) and STOMP /app/* frames. It
// refuses what the API refuses (another media type, invalid UTF-8, unknown
// fields, trailing data) with the same problem codes everywhere, and writes
// timestamps in one layout.
package jsonx

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/chat-service/chat/modules/problem"
)

// TimeLayout is the wire format of every timestamp: RFC 3339 with
// milliseconds, written in UTC (docs/api.md, "Conventions").
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// ContentType is the media type of every JSON body but problems.
const ContentType = "application/json"

// Accepts reports whether a Content-Type names a JSON body the API reads:
// application/json with no charset or charset utf-8 (a JSON text is UTF-8,
// RFC 8259).
func Accepts(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != ContentType {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// Unsupported is the 415 problem for a body that is not application/json.
func Unsupported() *problem.Problem {
	p := problem.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
	return &p
}

// Write sends v as a JSON body with status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a vanished client is not an error of ours
}
