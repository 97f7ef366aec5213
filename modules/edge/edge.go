// Package edge maps domain errors to what the API answers, in one place
// for every edge (go-kit's codeFrom): REST writes the problem with its
// status, STOMP delivers it on /user/queue/errors, and a rejected queued
// command carries it in an error event. The domain (modules/chat) returns
// kinds and codes and knows no HTTP status.
package edge

import (
	"errors"
	"math"
	"net/http"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

// statuses is the HTTP status of each domain error kind (docs/api.md,
// "Errors").
var statuses = map[error]int{
	chat.ErrInvalid:     http.StatusBadRequest,
	chat.ErrForbidden:   http.StatusForbidden,
	chat.ErrNotFound:    http.StatusNotFound,
	chat.ErrConflict:    http.StatusConflict,
	chat.ErrTooLarge:    http.StatusRequestEntityTooLarge,
	chat.ErrRateLimited: http.StatusTooManyRequests,
	chat.ErrUnavailable: http.StatusServiceUnavailable,
}

// Status is the HTTP status of a domain error kind (a chat sentinel); 500
// for anything else.
func Status(kind error) int {
	if s, ok := statuses[kind]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem maps an error of the chat Service to the problem document every
// edge answers with. ok is false for an unexpected error: a bug the edge
// logs, answered as a 500 "internal" problem without its text.
func Problem(err error) (p problem.Problem, ok bool) {
	var e *chat.Error
	switch {
	case errors.As(err, &e):
		p = problem.New(Status(e.Kind), e.Code, e.Detail)
		if e.RetryAfter > 0 {
			p.RetryAfter = max(1, int(math.Ceil(e.RetryAfter.Seconds())))
		}
		return p, true
	case errors.Is(err, chat.ErrUnavailable):
		return problem.New(http.StatusServiceUnavailable, "unavailable", "the database is unreachable; nothing was written"), true
	case errors.Is(err, chat.ErrNotFound):
		return problem.New(http.StatusNotFound, "session_not_found", "no such session"), true
	default:
		return problem.New(http.StatusInternalServerError, "internal", "an unexpected error occurred"), false
	}
}
