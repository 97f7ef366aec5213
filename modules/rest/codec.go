package rest

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/problem"
)

const (
	defaultLimit = 50
	maxLimit     = 200
)

// BodyReadTimeout bounds reading a request body: a client that trickles
// one holds a connection and a goroutine no longer than this.
const BodyReadTimeout = 10 * time.Second

// decode reads a JSON body strictly: application/json only, at most maxBody
// bytes, valid UTF-8, no unknown fields, no trailing data. It writes the
// problem and returns false when the body is refused.
func (h *Handlers) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		problem.Error(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
		return false
	}
	raw, err := httpserver.ReadBody(w, r, h.maxBody, BodyReadTimeout)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			problem.Error(w, http.StatusRequestEntityTooLarge, "payload_too_large", "the body is larger than "+strconv.FormatInt(h.maxBody, 10)+" bytes")
			return false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			problem.Error(w, http.StatusRequestTimeout, "request_timeout", "the request body did not arrive within "+BodyReadTimeout.String())
			return false
		}
		problem.Error(w, http.StatusBadRequest, "invalid_json", "the body could not be read")
		return false
	}
	if p := problem.DecodeJSON(raw, dst); p != nil {
		problem.Write(w, *p)
		return false
	}
	return true
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
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(499) // the client went away; nobody reads this answer
		return
	}
	p, ok := chat.ProblemOf(err)
	switch {
	case !ok:
		h.log.Error("request failed", "path", r.URL.Path, "err", err)
	case p.Status == http.StatusServiceUnavailable:
		h.log.Warn("database unavailable", "path", r.URL.Path, "err", err)
	}
	problem.Write(w, p)
}
