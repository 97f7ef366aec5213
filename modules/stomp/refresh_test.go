package stomp_test

import (
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

// expectTokenExpiring expects the token_expiring event on /user/queue/events.
func expectTokenExpiring(t *testing.T, tr *stomptest.Transport, exp time.Time) {
	t.Helper()
	f := tr.Expect(t, frame.MESSAGE)
	if got := f.Header.Get("destination"); got != stomp.QueueEvents {
		t.Fatalf("destination = %q, want %s (body %s)", got, stomp.QueueEvents, f.Body)
	}
	want := `{"type":"token_expiring","expiresAt":"` + exp.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"}`
	if string(f.Body) != want {
		t.Fatalf("body %s, want %s", f.Body, want)
	}
}

func refresh(tr *stomptest.Transport, token string, headers ...string) {
	h := append([]string{"destination", stomp.AppRefresh}, headers...)
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	tr.SendFrame(frame.SEND, "", h...)
}

func TestTokenRefreshMovesExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.serve(t, stomp.ConnOptions{})
	first := time.Now().Add(800 * time.Millisecond).Truncate(time.Millisecond)
	tr.Connect(t, stomptest.Token("alice", first))
	tr.SendFrame(frame.SUBSCRIBE, "", "id", "ev", "destination", stomp.QueueEvents, "receipt", "s")
	expectTokenExpiring(t, tr, first) // less than 60 s left: at once, before the RECEIPT
	tr.Expect(t, frame.RECEIPT)

	second := time.Now().Add(stomp.TokenWarning + 1500*time.Millisecond).Truncate(time.Millisecond)
	refresh(tr, stomptest.Token("alice", second), "receipt", "r1")
	if got := tr.Expect(t, frame.RECEIPT).Header.Get("receipt-id"); got != "r1" {
		t.Fatalf("receipt-id = %q", got)
	}
	// The first token's expiry passes; the connection stays, and the
	// second token's warning arrives 60 s before its expiry, not earlier.
	tr.NoFrame(t, time.Until(second.Add(-stomp.TokenWarning))-150*time.Millisecond)
	expectTokenExpiring(t, tr, second)
	if tr.IsClosed() {
		t.Fatal("the connection closed at the first token's expiry")
	}
}

func TestTokenExpiringBeforeSubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.serve(t, stomp.ConnOptions{})
	exp := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	tr.Connect(t, stomptest.Token("alice", exp))
	subscribe(t, tr, "msgs", stomp.QueueMessages)
	tr.NoFrame(t, 200*time.Millisecond) // due already, but nowhere to go yet
	tr.SendFrame(frame.SUBSCRIBE, "", "id", "ev", "destination", stomp.QueueEvents, "receipt", "s")
	expectTokenExpiring(t, tr, exp)
	tr.Expect(t, frame.RECEIPT)
	f := tr.ExpectError(t)
	if f.Header.Get("message") != "token expired" {
		t.Fatalf("message = %q, want token expired", f.Header.Get("message"))
	}
	if d := time.Since(exp); d > time.Second || d < -50*time.Millisecond {
		t.Fatalf("closed %s after the expiry", d)
	}
}

func TestTokenRefreshRefused(t *testing.T) {
	t.Parallel()
	later := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name, token, message string
	}{
		{"another user", stomptest.Token("mallory", later), "unauthorized"},
		{"invalid token", "garbage", "unauthorized"},
		{"expired token", stomptest.Token("alice", time.Now().Add(-time.Second)), "unauthorized"},
		{"no token", "", "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			tr := e.connect(t, "alice")
			refresh(tr, tc.token, "receipt", "r1")
			f := tr.ExpectError(t)
			if f.Header.Get("message") != tc.message {
				t.Fatalf("message = %q, want %q", f.Header.Get("message"), tc.message)
			}
		})
	}
}
