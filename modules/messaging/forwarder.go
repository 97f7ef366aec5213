package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chat-service/chat/modules/chat"
)

// How the forwarder reads and retries. A read that found rows is followed
// by the next at once (while fewer than maxRounds batches wait for their
// confirmations); after an empty one the forwarder waits for a wake-up (a
// commit on this instance, or on PostgreSQL a notification from any) and
// reads at once, or reads after outbox.poll_interval, the fallback.
const (
	maxRounds      = 4                // batches published and not yet confirmed
	forwardTimeout = 30 * time.Second // one batch's publishing and confirmations
	retryInitial   = 100 * time.Millisecond
	retryMax       = 5 * time.Second
)

// forwarder is the outbox → relay hop. It reads batches of outbox rows for
// consumer group "forwarder" (shared by every instance, so each row is
// forwarded once per group), publishes each batch to the relay in order
// without waiting in between, and goes on reading and publishing while the
// relay confirms. Batches are finished in order: the rows the relay
// confirmed are acknowledged, after it confirmed them; the others are read
// again, with every batch published after them. It never gives up on an
// event: while the relay is down it retries with backoff, and the lag shows
// in chat_outbox_lag_rows and chat_outbox_lag_seconds.
type forwarder struct {
	reader batchReader
	relay  relay
	idle   time.Duration   // outbox.poll_interval
	wake   <-chan struct{} // rows were committed
	m      *metrics
	log    *slog.Logger
	// What failed last, for one warning per outage; run's goroutine only.
	relayDown, readFailing bool
}

// round is a batch on its way to the relay.
type round struct {
	b      *readBatch
	ends   []int // ends[i]: how many publications carry b.msgs[:i+1]
	conf   *confirmation
	cancel context.CancelFunc // ends the wait for conf
}

// run forwards until ctx ends.
func (f *forwarder) run(ctx context.Context) {
	defer f.reader.close()
	var (
		rounds    []*round // oldest first
		bo        = newBackoff(retryInitial, retryMax)
		notBefore time.Time // no read before
		wakeable  bool      // a wake-up brings the next read forward
		timer     = time.NewTimer(time.Hour)
	)
	defer func() {
		for _, r := range rounds {
			r.cancel()
		}
		timer.Stop()
	}()
	for {
		// Finish the batches the relay has answered for, oldest first.
		for len(rounds) > 0 && closed(rounds[0].conf.done) {
			r := rounds[0]
			rounds = rounds[1:]
			if err := f.finish(ctx, r); err != nil {
				// The batches published after it go back unacknowledged, to
				// be read again after a backoff.
				for _, later := range rounds {
					later.cancel()
					_ = later.b.finish(ctx, 0) // gives rows back; nothing to write
				}
				rounds = nil
				notBefore, wakeable = time.Now().Add(bo.Next()), false
			} else if r.conf.n > 0 {
				bo.Reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
		if len(rounds) < maxRounds && !time.Now().Before(notBefore) {
			r, err := f.start(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case r != nil:
				rounds = append(rounds, r)
				continue // there may be more
			case errors.Is(err, errBusy): // another instance forwards: try again when idle
				notBefore, wakeable = time.Now().Add(f.idle), false
			case err != nil:
				notBefore, wakeable = time.Now().Add(bo.Next()), false
			default:
				notBefore, wakeable = time.Now().Add(f.idle), true
			}
		}
		// Wait for the oldest batch's confirmations, the next read or a
		// wake-up.
		var confirmed <-chan struct{}
		if len(rounds) > 0 {
			confirmed = rounds[0].conf.done
		}
		var readTime <-chan time.Time
		if len(rounds) < maxRounds {
			timer.Reset(time.Until(notBefore))
			readTime = timer.C
		}
		wake := f.wake
		if !wakeable {
			wake = nil // a wake-up does not cut a backoff short; it stays pending
		}
		select {
		case <-ctx.Done():
			return
		case <-confirmed:
		case <-readTime:
		case <-wake:
			notBefore = time.Time{} // committed rows are visible now: read at once
		}
		timer.Stop()
	}
}

// closed reports whether c is closed.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// start reads a batch and publishes it; nil when there was nothing to read.
func (f *forwarder) start(ctx context.Context) (*round, error) {
	b, err := f.reader.next(ctx)
	if errors.Is(err, errBusy) || ctx.Err() != nil {
		return nil, err
	}
	if err != nil {
		if !f.readFailing {
			f.readFailing = true
			f.log.Warn("read outbox failed; retrying", "err", err)
		}
		return nil, err
	}
	if f.readFailing {
		f.readFailing = false
		f.log.Info("outbox readable again")
	}
	if b == nil {
		return nil, nil
	}
	pubs, ends := f.publications(b.msgs)
	now := time.Now()
	sent := strconv.FormatInt(now.UnixNano(), 10)
	for _, p := range pubs {
		p.msg.Metadata.Set(metaSentAt, sent)
		if t := storedAt(p.msg); !t.IsZero() {
			f.m.stageForward.Observe(now.Sub(t))
		}
	}
	pctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	return &round{b: b, ends: ends, conf: f.relay.publishAll(pctx, pubs), cancel: cancel}, nil
}

// finish acknowledges the rows of a published batch that the relay
// confirmed and gives the rest back; an error says the batch was not
// wholly forwarded.
func (f *forwarder) finish(ctx context.Context, r *round) error {
	r.cancel()
	n, perr := r.conf.n, r.conf.err
	rows := 0 // rows all of whose publications the relay confirmed
	for rows < len(r.ends) && r.ends[rows] <= n {
		rows++
	}
	if err := r.b.finish(ctx, rows); err != nil {
		if ctx.Err() == nil {
			f.log.Warn("record forwarded outbox rows; they will be forwarded again", "rows", rows, "err", err)
		}
		return err
	}
	if rows > 0 {
		f.m.forwarded.Add(float64(rows))
		now := time.Now()
		for _, msg := range r.b.msgs[:rows] {
			if t := storedAt(msg); !t.IsZero() {
				f.m.forwardDelay.Observe(now.Sub(t).Seconds())
			}
		}
	}
	if perr != nil {
		if ctx.Err() != nil {
			return perr // shutting down: not the relay's fault
		}
		f.m.forwardFailures.Inc()
		if !f.relayDown {
			f.relayDown = true
			f.log.Warn("relay unavailable; outbox events wait and are retried", "err", perr)
		}
		return fmt.Errorf("forward outbox events: %w", perr)
	}
	if f.relayDown {
		f.relayDown = false
		f.log.Info("relay available again; outbox forwarding resumed")
	}
	return nil
}

// publications are the relay publications of msgs, in order; ends[i] is
// how many of them belong to msgs[:i+1].
func (f *forwarder) publications(msgs []*message.Message) (pubs []publication, ends []int) {
	pubs, ends = make([]publication, 0, len(msgs)), make([]int, len(msgs))
	for i, msg := range msgs {
		pubs = f.appendPublications(pubs, msg)
		ends[i] = len(pubs)
	}
	return pubs, ends
}

func (f *forwarder) appendPublications(pubs []publication, msg *message.Message) []publication {
	if key := msg.Metadata.Get(metaRoute); key != "" {
		// One route, known when the row was written: the payload goes on
		// as it is, undecoded.
		out := message.NewMessage(msg.UUID, msg.Payload)
		out.Metadata.Set(metaEventType, msg.Metadata.Get(metaEventType))
		out.Metadata.Set(metaStoredAt, msg.Metadata.Get(metaStoredAt))
		return append(pubs, publication{key: key, msg: out})
	}
	ev, err := decodeEvent(msg.Payload)
	if err != nil {
		// Retrying cannot repair it; it was written by a newer or broken
		// version. Acknowledged with its batch so that the outbox moves on.
		f.log.Error("drop undecodable outbox event", "uuid", msg.UUID, "err", err)
		return pubs
	}
	rs := routes(ev)
	for i, rt := range rs {
		var out *message.Message
		if len(rs) > 1 || rt.narrowed {
			if out, err = newEventMessage(rt.ev); err != nil {
				f.log.Error("drop unencodable outbox event", "uuid", msg.UUID, "err", err)
				continue
			}
			out.UUID = fmt.Sprintf("%s.%d", msg.UUID, i)
		} else {
			out = message.NewMessage(msg.UUID, msg.Payload)
			out.Metadata.Set(metaEventType, ev.Type)
		}
		out.Metadata.Set(metaStoredAt, msg.Metadata.Get(metaStoredAt))
		pubs = append(pubs, publication{key: rt.key, msg: out})
	}
	return pubs
}

// route is one relay publication of an event.
type route struct {
	key      string
	ev       chat.Event
	narrowed bool // ev names fewer participants than the stored event
}
