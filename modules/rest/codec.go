package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

const (
	defaultLimit = 50
	maxLimit     = 200
)

// decode reads a JSON body strictly: application/json only, at most maxBody
// bytes, valid UTF-8, no unknown fields, no trailing data. It writes the
// problem and returns false when the body is refused.
func (h *Handlers) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		problem.Error(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
		return false
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem.Error(w, http.StatusRequestEntityTooLarge, "payload_too_large", "the body is larger than "+strconv.FormatInt(h.maxBody, 10)+" bytes")
			return false
		}
		problem.Error(w, http.StatusBadRequest, "invalid_json", "the body could not be read")
		return false
	}
	// encoding/json silently replaces invalid UTF-8; the API refuses it.
	if !utf8.Valid(raw) {
		problem.Error(w, http.StatusBadRequest, "invalid_json", "the body is not valid UTF-8")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeDecodeError(w, err)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		problem.Error(w, http.StatusBadRequest, "invalid_json", "unexpected data after the JSON value")
		return false
	}
	return true
}

func writeDecodeError(w http.ResponseWriter, err error) {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		problem.Error(w, http.StatusBadRequest, "invalid_"+snake(typeErr.Field), typeErr.Field+" has the wrong type: want "+typeErr.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		problem.Error(w, http.StatusBadRequest, "unknown_field", "unknown field "+strconv.Quote(field))
	default:
		problem.Error(w, http.StatusBadRequest, "invalid_json", "the body is not a valid JSON object")
	}
}

// snake turns a JSON field path like clientMessageId into client_message_id.
func snake(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	var b strings.Builder
	for i, r := range field {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func parseLimit(w http.ResponseWriter, s string, present bool) (int, bool) {
	if !present {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		badParam(w, "invalid_limit", "limit must be an integer from 1 to 200")
		return 0, false
	}
	return n, true
}

func parseSeq(w http.ResponseWriter, s, code, name string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		badParam(w, code, name+" must be an integer >= 0")
		return 0, false
	}
	return n, true
}

func badParam(w http.ResponseWriter, code, detail string) {
	problem.Error(w, http.StatusBadRequest, code, detail)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a vanished client is not an error of ours
}

// fail maps a chat error to its problem document, once, for every handler.
func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *chat.Error
	switch {
	case errors.As(err, &ce):
		p := problem.New(statusOf(ce.Kind), ce.Code, ce.Detail)
		if ce.RetryAfter > 0 {
			p.RetryAfter = int(ce.RetryAfter.Seconds())
		}
		problem.Write(w, p)
	case errors.Is(err, chat.ErrUnavailable):
		h.log.Warn("database unavailable", "path", r.URL.Path, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "unavailable", "the database is unreachable; nothing was written")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		w.WriteHeader(499)
	default:
		h.log.Error("request failed", "path", r.URL.Path, "err", err)
		problem.Error(w, http.StatusInternalServerError, "internal", "an unexpected error occurred")
	}
}

func statusOf(kind error) int {
	switch kind {
	case chat.ErrInvalid:
		return http.StatusBadRequest
	case chat.ErrNotFound:
		return http.StatusNotFound
	case chat.ErrForbidden:
		return http.StatusForbidden
	case chat.ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case chat.ErrRateLimited:
		return http.StatusTooManyRequests
	case chat.ErrUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
