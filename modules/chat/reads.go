package chat

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chat-service/chat/modules/ident"
)

// AllowRead takes one read from userID's read budget
// (limits.read_rate_per_second): for reads served outside this package,
// such as GET /api/chat/presence. It returns an error that edge.Problem maps
// to 429 when the budget is spent.
func (s *Service) AllowRead(userID string) error { return s.reads.Allow(userID) }

// MarkRead moves the caller's read marker up to seq (clamped, monotonic) and
// publishes one read event when it moved.
func (s *Service) MarkRead(ctx context.Context, userID, sessionID string, seq int64) error {
	if !ident.ValidSessionID(sessionID) {
		return invalid("invalid_session_id", "session id must be a UUID")
	}
	if seq < 0 {
		return invalid("invalid_seq", "seq must be an integer >= 0")
	}
	_, _, err := s.store.MarkRead(ctx, sessionID, userID, seq, func(ctx context.Context, tx *sql.Tx, newSeq int64, ps []string) error {
		return s.events.Stored(ctx, tx, Event{Type: EventRead, SessionID: sessionID, UserID: userID, Seq: newSeq, Participants: ps})
	})
	if err != nil {
		return s.mapNotFound(fmt.Errorf("mark read in session %s: %w", sessionID, err))
	}
	return nil
}

// Unread returns the caller's sessions with unread messages and their total.
func (s *Service) Unread(ctx context.Context, userID string) ([]UnreadCount, int64, error) {
	if err := s.reads.Allow(userID); err != nil {
		return nil, 0, err
	}
	list, err := s.store.Unread(ctx, userID)
	if err != nil {
		return nil, 0, fmt.Errorf("unread of %s: %w", userID, err)
	}
	var total int64
	for _, u := range list {
		total += u.Unread
	}
	if list == nil {
		list = []UnreadCount{}
	}
	return list, total, nil
}
