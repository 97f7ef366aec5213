package chat

import (
	"context"
	"fmt"

	"github.com/chat-service/chat/modules/ident"
)

// History pages a session's messages, ascending by seq.
func (s *Service) History(ctx context.Context, userID, sessionID string, q HistoryQuery) ([]Message, bool, error) {
	if !ident.ValidSessionID(sessionID) {
		return nil, false, invalid("invalid_session_id", "session id must be a UUID")
	}
	if err := s.reads.Allow(userID); err != nil {
		return nil, false, err
	}
	list, more, err := s.store.Messages(ctx, sessionID, userID, q)
	if err != nil {
		return nil, false, s.mapNotFound(fmt.Errorf("history of session %s: %w", sessionID, err))
	}
	s.enrichMessages(ctx, list)
	return list, more, nil
}

// Replay returns the messages of a session after seq for a recovering
// subscriber, or resync=true when more than recovery.max_messages are
// missing, or when the user's read budget is spent (the client then pages
// history over REST, where the budget answers 429 with Retry-After).
func (s *Service) Replay(ctx context.Context, userID, sessionID string, afterSeq int64) ([]Message, bool, error) {
	if s.reads.Allow(userID) != nil {
		return nil, true, nil
	}
	limit := s.recover
	list, more, err := s.store.Messages(ctx, sessionID, userID, HistoryQuery{Limit: limit + 1, AfterSeq: &afterSeq})
	if err != nil {
		return nil, false, s.mapNotFound(fmt.Errorf("replay session %s: %w", sessionID, err))
	}
	if more || len(list) > limit {
		return nil, true, nil
	}
	s.enrichMessages(ctx, list)
	return list, false, nil
}
