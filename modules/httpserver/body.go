package httpserver

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/chat-service/chat/modules/jsonx"
	"github.com/chat-service/chat/modules/problem"
)

// IsBodyTooLarge reports whether err comes from reading past ReadBody's limit.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
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

// BodyReadTimeout bounds reading a request body: a client that trickles
// one holds a connection and a goroutine no longer than this.
const BodyReadTimeout = 10 * time.Second

// ReadJSON reads r's JSON body into dst strictly: an accepted Content-Type
// (jsonx.Accepts), at most limit bytes within BodyReadTimeout, then jsonx.Decode. It
// writes the problem and returns false when the body is refused.
func ReadJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) bool {
	if !jsonx.Accepts(r.Header.Get("Content-Type")) {
		problem.Write(w, *jsonx.Unsupported())
		return false
	}
	raw, err := ReadBody(w, r, limit, BodyReadTimeout)
	switch {
	case IsBodyTooLarge(err):
		problem.Error(w, http.StatusRequestEntityTooLarge, "payload_too_large", "the body is larger than "+strconv.FormatInt(limit, 10)+" bytes")
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		problem.Error(w, http.StatusRequestTimeout, "request_timeout", "the request body did not arrive within "+BodyReadTimeout.String())
		return false
	case err != nil:
		problem.Error(w, http.StatusBadRequest, "invalid_json", "the body could not be read")
		return false
	}
	if p := jsonx.Decode(raw, dst); p != nil {
		problem.Write(w, *p)
		return false
	}
	return true
}
