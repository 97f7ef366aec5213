package messaging

import (
	"testing"
	"time"
)

// TestBackoff: waits grow to the cap, stay jittered within [d/2, d], and
// Reset starts over.
func TestBackoff(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		if d := b.Next(); d < w/2 || d > w {
			t.Fatalf("wait %d is %s, want within [%s, %s]", i, d, w/2, w)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset the wait is %s, want at most 100ms", d)
	}
}
