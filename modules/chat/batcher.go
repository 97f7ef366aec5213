package chat

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errClosed answers items submitted to, or left in, a closed batcher.
var errClosed = errors.New("shutting down")

// batcher gathers items that arrive concurrently into batches for run,
// which stores a batch in one transaction and answers each of its items.
// An item weighs size(item) (a group of sends weighs its sends); a batch
// weighs at most max, unless one item alone is heavier.
//
// writers goroutines take batches: each takes what is queued, up to max.
// When another batch is being stored at that moment (the database is
// busy, so more items are coming and an early commit would only queue
// behind it) it also waits up to wait for more. Alone, it does not wait:
// at low load an item is stored at once, and batches form by themselves
// while a commit is in progress. This is the group commit of database
// engines, applied one level up; no library does it for database/sql.
type batcher[T any] struct {
	run     func([]T)
	size    func(T) int
	max     int
	wait    time.Duration
	in      chan T
	running atomic.Int32 // batches being stored
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newBatcher[T any](writers, maxBatch int, wait time.Duration, size func(T) int, run func([]T)) *batcher[T] {
	b := &batcher[T]{run: run, size: size, max: maxBatch, wait: wait, in: make(chan T, 4*maxBatch), done: make(chan struct{})}
	for range max(writers, 1) {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

// submit queues item; run answers it later. It fails when ctx ends first
// or the batcher is closed.
func (b *batcher[T]) submit(ctx context.Context, item T) error {
	select {
	case b.in <- item:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return errClosed
	}
}

// closed is closed when the batcher stops taking items.
func (b *batcher[T]) closed() <-chan struct{} { return b.done }

// close stops the writers after the batches they hold; items still queued
// are not run (their submitters see closed()).
func (b *batcher[T]) close() {
	b.once.Do(func() { close(b.done) })
	b.wg.Wait()
}

func (b *batcher[T]) work() {
	defer b.wg.Done()
	var (
		batch = make([]T, 0, b.max)
		carry []T // an item taken that did not fit: the next batch starts with it
	)
	for {
		var first T
		if len(carry) > 0 {
			first, carry = carry[0], carry[:0]
		} else {
			select {
			case first = <-b.in:
			case <-b.done:
				return
			}
		}
		batch, carry = b.fill(append(batch[:0], first), b.size(first), carry)
		b.running.Add(1)
		b.run(batch)
		b.running.Add(-1)
		clear(batch) // let the items go
	}
}

// fill adds to batch (of weight) what is queued and, while another batch
// is being stored, what arrives within wait. An item that would take the
// batch past max goes to carry instead.
func (b *batcher[T]) fill(batch []T, weight int, carry []T) ([]T, []T) {
	add := func(x T) bool {
		if weight+b.size(x) > b.max {
			carry = append(carry, x)
			return false
		}
		batch, weight = append(batch, x), weight+b.size(x)
		return true
	}
	for weight < b.max {
		select {
		case x := <-b.in:
			if !add(x) {
				return batch, carry
			}
			continue
		default:
		}
		break
	}
	if weight >= b.max || b.wait <= 0 || b.running.Load() == 0 {
		return batch, carry
	}
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	for weight < b.max {
		select {
		case x := <-b.in:
			if !add(x) {
				return batch, carry
			}
		case <-timer.C:
			return batch, carry
		}
	}
	return batch, carry
}
