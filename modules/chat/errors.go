package chat

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/chat-service/chat/modules/problem"
)

// Sentinel errors; edges map them once (REST to problem+json, STOMP to an
// error event or frame). Wrap them with InvalidError for a field-level code.
var (
	ErrNotFound    = errors.New("not found")
	ErrForbidden   = errors.New("forbidden")
	ErrInvalid     = errors.New("invalid")
	ErrTooLarge    = errors.New("too large")
	ErrRateLimited = errors.New("rate limited")
	ErrUnavailable = errors.New("unavailable")
	ErrConflict    = errors.New("conflict") // the resource's state forbids it (409)
)

// Error is a domain error with the API code and a human detail.
type Error struct {
	Kind   error  // one of the sentinels
	Code   string // snake_case API code, e.g. invalid_content
	Detail string
	// RetryAfter is set for ErrRateLimited.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Detail) }

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

func invalid(code, format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Code: code, Detail: fmt.Sprintf(format, args...)}
}

func notFound() error {
	return &Error{Kind: ErrNotFound, Code: "session_not_found", Detail: "no such session"}
}

// ProblemOf maps an error from the Service to the problem document every
// edge answers with (REST, STOMP /user/queue/errors, rejected commands).
// ok is false for an unexpected error: a bug the edge logs, answered as a
// 500 internal problem.
func ProblemOf(err error) (p problem.Problem, ok bool) {
	var e *Error
	switch {
	case errors.As(err, &e):
		p = problem.New(statusOf(e.Kind), e.Code, e.Detail)
		if e.RetryAfter > 0 {
			p.RetryAfter = max(1, int(math.Ceil(e.RetryAfter.Seconds())))
		}
		return p, true
	case errors.Is(err, ErrUnavailable):
		return problem.New(http.StatusServiceUnavailable, "unavailable", "the database is unreachable; nothing was written"), true
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "session_not_found", "no such session"), true
	default:
		return problem.New(http.StatusInternalServerError, "internal", "an unexpected error occurred"), false
	}
}

func statusOf(kind error) int {
	switch kind {
	case ErrInvalid:
		return http.StatusBadRequest
	case ErrNotFound:
		return http.StatusNotFound
	case ErrForbidden:
		return http.StatusForbidden
	case ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case ErrRateLimited:
		return http.StatusTooManyRequests
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	case ErrConflict:
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}
