package httpserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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

// ReadBody reads r's body, at most limit bytes, within timeout: a client
// that trickles its body holds a connection and a goroutine no longer than
// that. The read deadline is lifted again afterwards, so that the handler's
// own work is not cut short by it. Errors: IsBodyTooLarge past the limit,
// os.ErrDeadlineExceeded (errors.Is) when time ran out.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout)) // unsupported only by test recorders: then there is no deadline
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}
