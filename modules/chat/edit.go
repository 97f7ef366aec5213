package chat

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Editing and deleting messages: only by their sender, within
// limits.edit_window of sending (0: no limit). A deleted message stays in
// history as a tombstone (deleted, empty content, same seq). Edit and
// delete events go through the outbox like messages, to the session topic
// and to the participants' /user/queue/messages.

// EditRequest is an edit, from REST (PATCH .../messages/{seq}) or STOMP
// /app/chat.edit.
type EditRequest struct {
	SessionID string `json:"sessionId"`
	Seq       int64  `json:"seq"`
	Content   string `json:"content"`
}

// ErrMessageNotFound is the error for a seq with no message in a session
// the caller is in.
func ErrMessageNotFound() error {
	return &Error{Kind: ErrNotFound, Code: "message_not_found", Detail: "no message with that seq in this session"}
}

// EditMessage replaces the content of one of the caller's messages and
// returns it with editedAt set.
func (s *Service) EditMessage(ctx context.Context, userID string, req EditRequest) (Message, error) {
	if err := s.validateSend(SendRequest{SessionID: req.SessionID, Content: req.Content}); err != nil {
		return Message{}, err
	}
	if req.Seq < 1 {
		return Message{}, invalid("invalid_seq", "seq must be an integer >= 1")
	}
	if err := s.limiter.Allow(userID); err != nil {
		return Message{}, err
	}
	m, _, err := s.changeMessage(ctx, userID, req.SessionID, req.Seq, func(m Message) (MessageChange, bool, error) {
		if m.Deleted {
			return MessageChange{}, false, &Error{Kind: ErrConflict, Code: "message_deleted", Detail: "a deleted message cannot be edited"}
		}
		return MessageChange{Content: req.Content, At: Now()}, true, nil
	}, EventEdit)
	return m, err
}

// DeleteMessage turns one of the caller's messages into a tombstone.
// Deleting a deleted message changes nothing and publishes nothing.
func (s *Service) DeleteMessage(ctx context.Context, userID, sessionID string, seq int64) error {
	if !ValidSessionID(sessionID) {
		return invalid("invalid_session_id", "session id must be a UUID")
	}
	if seq < 1 {
		return invalid("invalid_seq", "seq must be an integer >= 1")
	}
	if err := s.limiter.Allow(userID); err != nil {
		return err
	}
	_, _, err := s.changeMessage(ctx, userID, sessionID, seq, func(m Message) (MessageChange, bool, error) {
		return MessageChange{Delete: true, At: Now()}, !m.Deleted, nil
	}, EventDelete)
	return err
}

// changeMessage checks the sender, lets decide choose the change from the
// message's state, checks the edit window, and stores the change with its
// event.
func (s *Service) changeMessage(ctx context.Context, userID, sessionID string, seq int64, decide func(Message) (MessageChange, bool, error), evType string) (Message, bool, error) {
	window, sender := s.limits.EditWindow, s.sender(ctx, userID)
	m, changed, err := s.store.ChangeMessage(ctx, sessionID, userID, seq, func(m Message) (MessageChange, bool, error) {
		if m.SenderID != userID {
			return MessageChange{}, false, &Error{Kind: ErrForbidden, Code: "forbidden", Detail: "only a message's sender may edit or delete it"}
		}
		change, apply, err := decide(m) // the message's state first: editing a tombstone is 409 at any age
		if err != nil || !apply {
			return change, apply, err
		}
		if window > 0 && time.Since(m.CreatedAt.Time) > window {
			return MessageChange{}, false, &Error{Kind: ErrForbidden, Code: "edit_window_passed",
				Detail: fmt.Sprintf("messages may be edited or deleted for %s after they were sent", window)}
		}
		return change, true, nil
	}, func(ctx context.Context, tx *sql.Tx, m Message, ps []string) error {
		m.Sender = sender
		ev := Event{Type: evType, SessionID: sessionID, Participants: ps}
		if evType == EventDelete {
			ev.Seq = m.Seq
		} else {
			ev.Message = &m
		}
		return s.events.Stored(ctx, tx, ev)
	})
	if err != nil {
		return Message{}, false, s.mapNotFound(fmt.Errorf("change message %d of session %s: %w", seq, sessionID, err))
	}
	m.Sender = sender
	return m, changed, nil
}
