package chat

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors: the kinds of domain error. The edges map each kind once
// (modules/edge: REST to problem+json, STOMP to an error event or frame).
// Wrap them with Error for an API code and a detail.
var (
	ErrNotFound    = errors.New("not found")
	ErrForbidden   = errors.New("forbidden")
	ErrInvalid     = errors.New("invalid")
	ErrTooLarge    = errors.New("too large")
	ErrRateLimited = errors.New("rate limited")
	ErrUnavailable = errors.New("unavailable")
	ErrConflict    = errors.New("conflict") // the resource's state forbids it
)

// Kinds lists every sentinel above, so that an edge can prove it maps
// each of them (a kind added here and not there fails its test).
func Kinds() []error {
	return []error{ErrNotFound, ErrForbidden, ErrInvalid, ErrTooLarge, ErrRateLimited, ErrUnavailable, ErrConflict}
}

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
