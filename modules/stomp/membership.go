package stomp

import (
	"github.com/chat-service/chat/modules/chat"
)

// Membership changes, as they reach this instance in members events: the
// service's participant cache forgets the session, and each connection of
// a removed user forgets that it may subscribe to it; its subscriptions to
// the session's topic get one removed event (after the members event) and
// then nothing more.

// membersForgetter is implemented by chat.Service: it drops a session's
// cached participants.
type membersForgetter interface{ ForgetMembers(sessionID string) }

func (h *Hub) forgetMembers(sessionID string) {
	if f, ok := h.o.Chat.(membersForgetter); ok {
		f.ForgetMembers(sessionID)
	}
}

// membersChanged runs after a members event was delivered.
func (h *Hub) membersChanged(ev *chat.Event) {
	for _, u := range ev.Added {
		for _, c := range h.users.get(u) {
			c.forgetSession(ev.SessionID)
		}
	}
	if len(ev.Removed) == 0 {
		return
	}
	p, err := newPayload(&chat.Event{Type: chat.EventRemoved, SessionID: ev.SessionID})
	if err != nil {
		h.log.Error("encode removed event", "error", err)
		return
	}
	for _, u := range ev.Removed {
		for _, c := range h.users.get(u) {
			c.revokeSession(ev.SessionID, p)
		}
	}
}

// forgetSession makes the next SUBSCRIBE to the session ask again.
func (c *conn) forgetSession(sessionID string) {
	c.mu.Lock()
	delete(c.participant, sessionID)
	c.mu.Unlock()
}

// revokeSession refuses further SUBSCRIBEs to the session and cuts this
// connection's subscriptions to its topic, each after the removed event.
func (c *conn) revokeSession(sessionID string, removed *payload) {
	c.mu.Lock()
	if c.participant == nil {
		c.participant = make(map[string]bool)
	}
	c.participant[sessionID] = false
	var cut []*subscription
	if !c.gone {
		for _, s := range c.subs {
			if s.kind == destTopic && s.sessionID == sessionID && s.active.Load() && !s.revoked {
				c.deliverSubLocked(s, removed, 0)
				s.revoked = true
				cut = append(cut, s)
			}
		}
	}
	c.mu.Unlock()
	// Out of the session's fan-out; the subscription itself stays until
	// the client unsubscribes (its queued frames still leave).
	for _, s := range cut {
		c.h.sessions.remove(s.sessionID, s)
	}
	if len(cut) > 0 {
		c.debug("topic subscriptions cut: removed from the session", "session_id", sessionID, "subscriptions", len(cut))
	}
}
