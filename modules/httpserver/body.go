package httpserver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/chat-service/chat/modules/problem"
)

// LimitBody caps request bodies at n bytes (REST uses
// config.Limits.MaxBodyBytes()). A declared Content-Length over n is refused
// at once with a 413 problem `payload_too_large`; otherwise the body is
// wrapped in http.MaxBytesReader, so a handler reading past n gets an error
// for which IsBodyTooLarge is true and answers it with WriteBodyTooLarge.
// The reader also makes the server close the connection after the response,
// so the unread rest is not parsed as a next request.
func LimitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				WriteBodyTooLarge(w, n)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// IsBodyTooLarge reports whether err comes from reading past a LimitBody limit.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// WriteBodyTooLarge answers a 413 problem `payload_too_large` naming the limit.
func WriteBodyTooLarge(w http.ResponseWriter, limit int64) {
	problem.Error(w, http.StatusRequestEntityTooLarge, "payload_too_large",
		fmt.Sprintf("request body is larger than %d bytes", limit))
}
