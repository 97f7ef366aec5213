package httpserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/chat-service/chat/modules/problem"
)

// recoverer turns a handler panic into a logged error and, when nothing was
// written yet, a 500 problem `internal`. http.ErrAbortHandler is the
// standard way to abort a response and is passed on untouched.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := wrapRecorder(w)
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"panic", fmt.Sprint(p),
					"method", r.Method,
					"path", RedactedURI(r.URL),
					"request_id", RequestID(r.Context()),
					"stack", string(debug.Stack()),
				)
				if rec.wroteHeader {
					return // the client already has a status; it gets a truncated body
				}
				problem.Error(rec, http.StatusInternalServerError, "internal", "internal error; request id "+RequestID(r.Context()))
			}()
			next.ServeHTTP(rec, r)
		})
	}
}
