package messaging

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chat-service/chat/modules/chat"
)

// forwarder is the outbox → relay hop: a router handler on the outbox
// subscriber (consumer group "forwarder", shared by every instance) that
// publishes each event to the relay. It never gives up on an event: the
// retry middleware backs off while the relay is down, and the lag shows in
// chat_outbox_lag_rows and chat_outbox_lag_seconds.
type forwarder struct {
	relay relay
	m     *metrics
	log   *slog.Logger
	down  atomic.Bool
}

func (f *forwarder) handle(msg *message.Message) error {
	ev, err := decodeEvent(msg.Payload)
	if err != nil {
		// Retrying cannot repair it; it was written by a newer or broken
		// version. Acked so that the outbox moves on.
		f.log.Error("drop undecodable outbox event", "uuid", msg.UUID, "err", err)
		return nil
	}
	rs := routes(ev)
	for i, rt := range rs {
		out := msg
		if len(rs) > 1 || rt.narrowed {
			if out, err = newEventMessage(rt.ev); err != nil {
				return err
			}
			out.UUID = fmt.Sprintf("%s.%d", msg.UUID, i)
			out.Metadata.Set(metaStoredAt, msg.Metadata.Get(metaStoredAt))
		} else {
			out = message.NewMessage(msg.UUID, msg.Payload)
			out.Metadata.Set(metaEventType, ev.Type)
			out.Metadata.Set(metaStoredAt, msg.Metadata.Get(metaStoredAt))
		}
		out.SetContext(msg.Context())
		if err := f.relay.publish(msg.Context(), rt.key, out); err != nil {
			if msg.Context().Err() != nil {
				return err // shutting down, or the ack deadline passed: not the relay's fault
			}
			f.m.forwardFailures.Inc()
			if f.down.CompareAndSwap(false, true) {
				f.log.Warn("relay unavailable; outbox events wait and are retried", "err", err)
			}
			return fmt.Errorf("forward %s event to %s: %w", ev.Type, rt.key, err)
		}
	}
	if f.down.CompareAndSwap(true, false) {
		f.log.Info("relay available again; outbox forwarding resumed")
	}
	f.m.forwarded.Inc()
	if t := storedAt(msg); !t.IsZero() {
		f.m.forwardDelay.Observe(time.Since(t).Seconds())
	}
	return nil
}

// relayHandler hands every relay event to the local hub.
type relayHandler struct {
	hub Hub
	m   *metrics
	log *slog.Logger
}

func (h *relayHandler) handle(msg *message.Message) error {
	ev, err := decodeEvent(msg.Payload)
	if err != nil {
		h.log.Error("drop undecodable relay event", "uuid", msg.UUID, "err", err)
		return nil
	}
	h.hub.Deliver(ev)
	h.m.relayReceived.Inc()
	return nil
}

// retry is a router middleware that retries a failing handler with
// exponential backoff (jittered) until it succeeds or the message's context
// ends: the SQL subscriber's ack deadline (the row is then read again in a
// fresh transaction) or shutdown. There is deliberately no poison queue: a
// chat event is never dropped for a relay or database outage.
type retry struct {
	initial, max time.Duration
	onFailure    func(attempt int, err error)
}

func (r retry) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		wait := r.initial
		for attempt := 1; ; attempt++ {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			if r.onFailure != nil {
				r.onFailure(attempt, err)
			}
			jittered := wait/2 + rand.N(wait/2+1)
			select {
			case <-msg.Context().Done():
				return nil, err
			case <-time.After(jittered):
			}
			wait = min(2*wait, r.max)
		}
	}
}

// route is one relay publication of an event.
type route struct {
	key      string
	ev       chat.Event
	narrowed bool // ev names fewer participants than the stored event
}
