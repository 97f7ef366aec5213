package rest

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/chat-service/chat/modules/edge"
	"github.com/chat-service/chat/modules/httpserver"
	"github.com/chat-service/chat/modules/jsonx"
	"github.com/chat-service/chat/modules/problem"
)

const (
	defaultLimit = 50
	maxLimit     = 200
)

// decode reads a JSON body the way every edge does (httpserver.ReadJSON): it writes
// the problem and returns false when the body is refused.
func (h *Handlers) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	return httpserver.ReadJSON(w, r, h.maxBody, dst)
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

func writeJSON(w http.ResponseWriter, status int, v any) { jsonx.Write(w, status, v) }

// writeCreated answers 201 with v when it was created, else 200 (an
// idempotent repeat: the existing direct session, a resent message).
func writeCreated(w http.ResponseWriter, created bool, v any) {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
}

// fail answers a chat error with its problem document (edge.Problem), once,
// for every handler.
func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(499) // the client went away; nobody reads this answer
		return
	}
	p, ok := edge.Problem(err)
	switch {
	case !ok:
		h.log.Error("request failed", "path", r.URL.Path, "err", err)
	case p.Status == http.StatusServiceUnavailable:
		h.log.Warn("database unavailable", "path", r.URL.Path, "err", err)
	}
	problem.Write(w, p)
}
