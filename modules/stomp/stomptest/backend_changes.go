package stomptest

import (
	"context"
	"slices"

	"github.com/chat-service/chat/modules/chat"
)

// EditMessage implements stomp.Chat: the sender replaces a message's content.
func (b *Backend) EditMessage(ctx context.Context, userID string, req chat.EditRequest) (chat.Message, error) {
	return b.change(userID, req.SessionID, req.Seq, func(m *chat.Message) (chat.Event, error) {
		if m.Deleted {
			return chat.Event{}, &chat.Error{Kind: chat.ErrConflict, Code: "message_deleted", Detail: "deleted"}
		}
		at := chat.Now()
		m.Content, m.EditedAt = req.Content, &at
		mc := *m
		return chat.Event{Type: chat.EventEdit, SessionID: req.SessionID, Message: &mc}, nil
	})
}

// DeleteMessage implements stomp.Chat: the sender leaves a tombstone.
func (b *Backend) DeleteMessage(ctx context.Context, userID, sessionID string, seq int64) error {
	_, err := b.change(userID, sessionID, seq, func(m *chat.Message) (chat.Event, error) {
		m.Content, m.Deleted = "", true
		return chat.Event{Type: chat.EventDelete, SessionID: sessionID, Seq: seq}, nil
	})
	return err
}

func (b *Backend) change(userID, sessionID string, seq int64, fn func(*chat.Message) (chat.Event, error)) (chat.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.member(sessionID, userID)
	if err != nil {
		return chat.Message{}, err
	}
	if seq < 1 || seq > int64(len(s.messages)) {
		return chat.Message{}, &chat.Error{Kind: chat.ErrNotFound, Code: "message_not_found", Detail: "no such message"}
	}
	m := &s.messages[seq-1]
	if m.SenderID != userID {
		return chat.Message{}, &chat.Error{Kind: chat.ErrForbidden, Code: "forbidden", Detail: "not the sender"}
	}
	ev, err := fn(m)
	if err != nil {
		return chat.Message{}, err
	}
	ev.Participants = slices.Clone(s.participants)
	if b.hub != nil {
		b.hub.Deliver(ev) // under the lock, in order
	}
	return *m, nil
}

// RemoveMember removes userID from a session by `by` and publishes the
// members event, the way ChangeMembers and the relay do together.
func (b *Backend) RemoveMember(sessionID, by, userID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[sessionID]
	before := slices.Clone(s.participants)
	s.participants = slices.DeleteFunc(s.participants, func(u string) bool { return u == userID })
	if b.hub != nil {
		b.hub.Deliver(chat.Event{Type: chat.EventMembers, SessionID: sessionID, Added: []string{},
			Removed: []string{userID}, By: by, Participants: before})
	}
}

// AddMember adds userID to a session and publishes the members event.
func (b *Backend) AddMember(sessionID, by, userID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[sessionID]
	s.participants = append(s.participants, userID)
	if b.hub != nil {
		b.hub.Deliver(chat.Event{Type: chat.EventMembers, SessionID: sessionID, Added: []string{userID},
			Removed: []string{}, By: by, Participants: slices.Clone(s.participants)})
	}
}
