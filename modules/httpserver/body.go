package httpserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/chat-service/chat/modules/problem"
)

// IsBodyTooLarge reports whether err comes from reading past ReadBody's limit.
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
