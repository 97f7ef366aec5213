package stomp

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
)

// Destinations a client may subscribe to (docs/api.md, "Destinations you can subscribe to").
const (
	TopicSessionPrefix = "/topic/session."
	QueueMessages      = "/user/queue/messages"
	QueueEvents        = "/user/queue/events"
	QueueErrors        = "/user/queue/errors"
)

type destKind uint8

const (
	destTopic destKind = iota + 1
	destMessages
	destEvents
	destErrors
)

// maxHeaderID bounds a SUBSCRIBE's id and destination: both are kept for
// the subscription's life and repeated in every MESSAGE it gets.
const maxHeaderID = 256

// queueIndex is the index of a /user/queue/* kind in conn.queues.
func queueIndex(k destKind) int { return int(k - destMessages) }

// subscription is one SUBSCRIBE. id, dest, kind and sessionID never change;
// the rest is guarded by conn.mu.
type subscription struct {
	c         *conn
	id        string
	dest      string
	kind      destKind
	sessionID string
	head      []byte      // "MESSAGE", destination, subscription and "message-id:", encoded for the connection's version
	active    atomic.Bool // false once unsubscribed: queued frames are skipped

	at        int64            // Unix ms of the SUBSCRIBE
	revoked   bool             // topic: its user was removed from the session; nothing more is delivered
	lastSeq   int64            // topic: highest message seq delivered
	seqs      map[string]int64 // /user/queue/messages: highest seq per session
	replaying bool             // since-seq replay or resync running: live events wait in pending
	recheck   bool             // a Resync came during the replay: run one more (resync.go)
	// positioned: lastSeq is a position even when 0 (since-seq given).
	positioned bool
	pending    []*payload
}

func (c *conn) onSubscribe(f *frame.Frame) (err error) {
	defer c.flushTokenWarning(&err) // a token_expiring due before /user/queue/events existed (refresh.go)
	dest := f.Header.Get(frame.Destination)
	if dest == "" {
		return ReasonMissingDest.With("SUBSCRIBE needs a destination header")
	}
	if len(dest) > maxHeaderID {
		return ReasonDestTooLong.With("a destination is at most " + strconv.Itoa(maxHeaderID) + " bytes")
	}
	id := f.Header.Get(frame.Id)
	if len(id) > maxHeaderID {
		return ReasonSubIDTooLong.With("a subscription id is at most " + strconv.Itoa(maxHeaderID) + " bytes")
	}
	if id == "" {
		if c.version > V10 {
			return ReasonMissingID.With("SUBSCRIBE needs an id header")
		}
		id = dest // STOMP 1.0 made id optional
	}
	switch f.Header.Get(frame.Ack) {
	case "", "auto", "client", "client-individual":
		// Accepted; delivery is ack:auto in effect.
	default:
		return ReasonInvalidAck.With("ack must be auto, client or client-individual")
	}
	if c.findSub(id) != nil {
		return ReasonDuplicateSub.Withf("subscription id %q is already in use", id)
	}
	if len(c.subs) >= c.h.o.Limits.MaxSubscriptions {
		return ReasonTooManySubs.With("at most " + strconv.Itoa(c.h.o.Limits.MaxSubscriptions) + " per connection")
	}
	sub := &subscription{c: c, id: id, dest: dest, head: messageHead(dest, id, c.version), at: time.Now().UnixMilli()}
	switch dest { // the constants are kept rather than the frame's copies
	case QueueMessages:
		sub.kind, sub.dest = destMessages, QueueMessages
	case QueueEvents:
		sub.kind, sub.dest = destEvents, QueueEvents
	case QueueErrors:
		sub.kind, sub.dest = destErrors, QueueErrors
	default:
		sid, ok := strings.CutPrefix(dest, TopicSessionPrefix)
		if !ok {
			return ReasonUnknownDest.With("cannot subscribe to " + truncate(dest, 200))
		}
		sub.kind, sub.sessionID = destTopic, sid
		if err := c.authorizeSession(sid); err != nil {
			return err
		}
	}
	since := int64(-1)
	if s, ok := f.Header.Contains("since-seq"); ok && sub.kind == destTopic {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 0 {
			return ReasonInvalidSinceSeq.With("since-seq must be an integer >= 0")
		}
		since = n
		sub.replaying, sub.lastSeq, sub.positioned = true, n, true
	}
	if !c.addSub(sub) {
		return errRemoved
	}
	if since >= 0 {
		return c.replay(sub, since)
	}
	return nil
}

// errRemoved refuses a SUBSCRIBE to a session the user was removed from.
var errRemoved = ReasonForbiddenDest.With("no such session, or not a participant")

// authorizeSession checks participation once per connection and session;
// a members event that removes the user makes the next check refuse
// (revokeSession), one that adds them asks again.
func (c *conn) authorizeSession(sid string) error {
	c.mu.Lock()
	known, seen := c.participant[sid]
	c.mu.Unlock()
	if seen {
		if !known {
			return errRemoved
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.h.o.CallTimeout)
	defer cancel()
	ok, err := c.h.o.Chat.IsParticipant(ctx, sid, c.user)
	if err != nil {
		c.lg().Warn("participant check failed", "session_id", sid, "error", err)
		return ReasonUnavailable.With("cannot check the subscription now; retry later")
	}
	if !ok {
		// The same answer for an unknown session and a foreign one: existence is not leaked.
		return ReasonForbiddenDest.With("no such session, or not a participant")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if known, seen := c.participant[sid]; seen && !known {
		return errRemoved // removed while we asked
	}
	if c.participant == nil {
		c.participant = make(map[string]bool)
	}
	c.participant[sid] = true
	return nil
}

// messageHead encodes the start of every MESSAGE of one subscription.
func messageHead(dest, id string, v Version) []byte {
	b := make([]byte, 0, len("MESSAGE\ndestination:\nsubscription:\nmessage-id:")+len(dest)+len(id)+8)
	b = append(b, "MESSAGE\n"...)
	b = appendHeader(b, frame.Destination, dest, v, false)
	b = appendHeader(b, frame.Subscription, id, v, false)
	return append(b, "message-id:"...)
}

// findSub returns the subscription with id, or nil. Reader loop only; a
// connection has few subscriptions (at most limits.max_subscriptions), so
// a scan beats a map in time and memory.
func (c *conn) findSub(id string) *subscription {
	for _, s := range c.subs {
		if s.id == id {
			return s
		}
	}
	return nil
}

// addSub adds sub; false when it is a topic subscription whose user was
// removed from the session since authorizeSession (checked under c.mu,
// which revokeSession holds while it cuts subscriptions).
func (c *conn) addSub(sub *subscription) bool {
	c.mu.Lock()
	if sub.kind == destTopic && !c.participant[sub.sessionID] {
		c.mu.Unlock()
		return false
	}
	sub.active.Store(true)
	c.subs = append(c.subs, sub)
	if sub.kind != destTopic {
		c.queues[queueIndex(sub.kind)] = append(c.queues[queueIndex(sub.kind)], sub)
	}
	c.mu.Unlock()
	if sub.kind == destTopic {
		c.h.sessions.add(sub.sessionID, sub, 0)
	}
	c.h.m.subscriptions.Inc()
	return true
}

func (c *conn) onUnsubscribe(f *frame.Frame) error {
	id := f.Header.Get(frame.Id)
	if id == "" {
		if c.version > V10 {
			return ReasonMissingID.With("UNSUBSCRIBE needs an id header")
		}
		id = f.Header.Get(frame.Destination)
	}
	if sub := c.findSub(id); sub != nil {
		c.removeSub(sub)
	}
	return nil // an unknown id is not an error: the goal, no such subscription, holds
}

func (c *conn) removeSub(sub *subscription) {
	sub.active.Store(false)
	c.mu.Lock()
	c.subs = without(c.subs, sub)
	if sub.kind != destTopic {
		c.queues[queueIndex(sub.kind)] = without(c.queues[queueIndex(sub.kind)], sub)
	}
	c.mu.Unlock()
	if sub.kind == destTopic {
		c.h.sessions.remove(sub.sessionID, sub)
	}
	c.h.m.subscriptions.Dec()
}

func without(subs []*subscription, s *subscription) []*subscription {
	out := subs[:0]
	for _, x := range subs {
		if x != s {
			out = append(out, x)
		}
	}
	clear(subs[len(out):])
	return out
}

// replay runs a since-seq recovery: live events for the session are held
// in sub.pending while the missed messages are read, then the replayed
// messages and the held events leave in seq order with duplicates dropped.
// The SUBSCRIBE's RECEIPT, queued by the caller, follows them.
func (c *conn) replay(sub *subscription, since int64) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.o.CallTimeout)
	msgs, resync, err := c.h.o.Chat.Replay(ctx, c.user, sub.sessionID, since)
	cancel()
	if err != nil {
		c.removeSub(sub)
		if errors.Is(err, chat.ErrNotFound) {
			return errRemoved // removed between the participation check and the replay
		}
		c.lg().Warn("replay failed", "session_id", sub.sessionID, "error", err)
		return ReasonUnavailable.With("cannot replay the session now; retry later")
	}
	var replayed []*payload
	if resync {
		from := since
		p, err := newPayload(&chat.Event{Type: chat.EventResync, SessionID: sub.sessionID, FromSeq: &from})
		if err != nil {
			return err
		}
		replayed = append(replayed, p)
	} else {
		replayed = make([]*payload, 0, len(msgs))
		for i := range msgs {
			p, err := newPayload(&chat.Event{Type: chat.EventMessage, SessionID: sub.sessionID, Message: &msgs[i]})
			if err != nil {
				return err
			}
			replayed = append(replayed, p)
		}
	}
	if c.endReplay(sub, replayed) {
		c.h.again(c, sub)
	}
	return nil
}

// deliverTopic delivers a session event to s, one of this connection's
// topic subscriptions.
func (c *conn) deliverTopic(s *subscription, p *payload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || !s.active.Load() || s.revoked || (p.except != "" && p.except == c.user) {
		return
	}
	c.deliverSubLocked(s, p, 0)
}

// deliverUser delivers an event to this connection's /user/queue/* subscriptions.
func (c *conn) deliverUser(p *payload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return
	}
	for _, s := range c.queues[queueIndex(p.queue)] {
		c.deliverSubLocked(s, p, 0)
	}
}

// deliverSubLocked queues p for one subscription, in seq order: a message
// at or below the highest seq already delivered there is a duplicate.
func (c *conn) deliverSubLocked(s *subscription, p *payload, extra int) {
	if s.replaying {
		if len(s.pending) >= c.h.o.Limits.OutboundQueue {
			if p.transient {
				c.h.m.droppedTyping.Inc()
			} else {
				c.slowConsumer()
			}
			return
		}
		s.pending = append(s.pending, p)
		return
	}
	if p.seq > 0 {
		switch s.kind {
		case destTopic:
			if p.seq <= s.lastSeq {
				return
			}
			s.lastSeq = p.seq
		case destMessages:
			if s.seqs == nil {
				s.seqs = make(map[string]int64)
			}
			if p.seq <= s.seqs[p.sessionID] {
				return
			}
			s.seqs[p.sessionID] = p.seq
		}
	}
	c.push(outItem{kind: kindMessage, sub: s, p: p}, extra)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
