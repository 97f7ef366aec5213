package edge_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/edge"
)

// TestStatusCoversEveryKind: each domain error kind has the status
// docs/api.md gives it, and a kind added to chat.Kinds without a status
// here fails (it would answer 500).
func TestStatusCoversEveryKind(t *testing.T) {
	t.Parallel()
	want := map[error]int{
		chat.ErrInvalid:     http.StatusBadRequest,
		chat.ErrForbidden:   http.StatusForbidden,
		chat.ErrNotFound:    http.StatusNotFound,
		chat.ErrConflict:    http.StatusConflict,
		chat.ErrTooLarge:    http.StatusRequestEntityTooLarge,
		chat.ErrRateLimited: http.StatusTooManyRequests,
		chat.ErrUnavailable: http.StatusServiceUnavailable,
	}
	for _, kind := range chat.Kinds() {
		t.Run(kind.Error(), func(t *testing.T) {
			t.Parallel()
			status, ok := want[kind]
			if !ok {
				t.Fatalf("kind %q has no status in this table: add it here and to edge.Status", kind)
			}
			if got := edge.Status(kind); got != status {
				t.Fatalf("Status(%q) = %d, want %d", kind, got, status)
			}
			p, ok := edge.Problem(fmt.Errorf("wrapped: %w", &chat.Error{Kind: kind, Code: "some_code", Detail: "d"}))
			if !ok || p.Status != status || p.Code != "some_code" || p.Detail != "d" || p.Title != http.StatusText(status) {
				t.Fatalf("Problem = %+v, %v", p, ok)
			}
		})
	}
	if len(want) != len(chat.Kinds()) {
		t.Fatalf("the table has %d kinds, chat.Kinds %d", len(want), len(chat.Kinds()))
	}
}

func TestProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter int
		ok         bool
	}{
		{name: "bare not found", err: fmt.Errorf("get: %w", chat.ErrNotFound), status: 404, code: "session_not_found", ok: true},
		{name: "bare unavailable", err: fmt.Errorf("store: %w", chat.ErrUnavailable), status: 503, code: "unavailable", ok: true},
		{name: "rate limited rounds up", err: &chat.Error{Kind: chat.ErrRateLimited, Code: "rate_limited", RetryAfter: 1500 * time.Millisecond}, status: 429, code: "rate_limited", retryAfter: 2, ok: true},
		{name: "rate limited at least a second", err: &chat.Error{Kind: chat.ErrRateLimited, Code: "rate_limited", RetryAfter: time.Millisecond}, status: 429, code: "rate_limited", retryAfter: 1, ok: true},
		{name: "unexpected", err: errors.New("boom"), status: 500, code: "internal", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := edge.Problem(tc.err)
			if ok != tc.ok || p.Status != tc.status || p.Code != tc.code || p.RetryAfter != tc.retryAfter {
				t.Fatalf("Problem(%v) = %+v, %v; want %d %s retryAfter %d, %v", tc.err, p, ok, tc.status, tc.code, tc.retryAfter, tc.ok)
			}
			if !ok && p.Detail == tc.err.Error() {
				t.Fatal("an unexpected error's text reached the client")
			}
		})
	}
}
