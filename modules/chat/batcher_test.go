package chat

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBatcherGroups: while a batch is being stored, submitted groups gather
// into the next batch, in submission order, never split, and a batch
// weighs at most max unless one group alone is heavier.
func TestBatcherGroups(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]int
		release = make(chan struct{})
	)
	run := func(batch [][]int) {
		mu.Lock()
		var flat []int
		for _, g := range batch {
			flat = append(flat, g...)
		}
		batches = append(batches, flat)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // the first batch "commits" slowly
		}
	}
	b := newBatcher(1, 4, time.Millisecond, func(g []int) int { return len(g) }, run)
	defer b.close()
	ctx := context.Background()
	if err := b.submit(ctx, []int{0}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the writer has taken it and blocks in run
	for _, g := range [][]int{{1, 2}, {3}, {4, 5, 6}, {7, 8, 9, 10, 11}} {
		if err := b.submit(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, x := range batches {
			n += len(x)
		}
		got := slices.Clone(batches)
		mu.Unlock()
		if n == 12 {
			want := [][]int{{0}, {1, 2, 3}, {4, 5, 6}, {7, 8, 9, 10, 11}}
			if !slices.EqualFunc(got, want, slices.Equal[[]int]) {
				t.Fatalf("batches %v, want %v", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("batches so far %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBatcherAloneDoesNotWait: with nothing else being stored, an item is
// run at once, not after the wait.
func TestBatcherAloneDoesNotWait(t *testing.T) {
	done := make(chan time.Time, 1)
	b := newBatcher(1, 100, time.Second, func(int) int { return 1 }, func([]int) { done <- time.Now() })
	defer b.close()
	start := time.Now()
	if err := b.submit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if d := (<-done).Sub(start); d > 500*time.Millisecond {
		t.Fatalf("a lone item waited %s for company", d)
	}
}
