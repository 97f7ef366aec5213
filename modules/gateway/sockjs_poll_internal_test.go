package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestServePollRetriesAnotherReceiver: a poll that sockjs-go refuses
// because the previous poll has not detached yet is tried again, and the
// client gets the frames instead of a close; a refusal that persists is
// passed on.
func TestServePollRetriesAnotherReceiver(t *testing.T) {
	calls := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/javascript; charset=UTF-8")
		if calls < 3 {
			_, _ = w.Write([]byte(anotherReceiver))
			return
		}
		_, _ = w.Write([]byte("a[\"MESSAGE\"]\n"))
	})
	w := httptest.NewRecorder()
	servePoll(h, w, httptest.NewRequest(http.MethodPost, "/ws/0/s/xhr", nil))
	if w.Body.String() != "a[\"MESSAGE\"]\n" || calls != 3 || w.Header().Get("Content-Type") == "" {
		t.Fatalf("after %d calls: %q", calls, w.Body.String())
	}

	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(anotherReceiver)) })
	w = httptest.NewRecorder()
	servePoll(stuck, w, httptest.NewRequest(http.MethodPost, "/ws/0/s/xhr", nil))
	if w.Body.String() != anotherReceiver {
		t.Fatalf("a lasting refusal: %q", w.Body.String())
	}
}
