package chat

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Recovery after relay loss: when RabbitMQ restarts, the events queued for
// an instance are gone, and the gateway asks the store for the messages its
// subscribers may have missed. These reads are the server's, not the
// user's: they do not spend the user's read budget.

// SessionSeq is one session of a user and its last seq.
type SessionSeq struct {
	SessionID string
	LastSeq   int64
}

// LastSeqs returns the last seq of each of the sessions that exist: a
// resync skips the sessions where nothing was missed.
func (s *Service) LastSeqs(ctx context.Context, ids []string) (map[string]int64, error) {
	return s.store.LastSeqs(ctx, ids)
}

// activePage is the page size ActiveSessions reads sessions in.
const activePage = 100

// ActiveSessions lists userID's sessions with activity (a message, or
// creation) at or after since, newest first, at most limit of them.
func (s *Service) ActiveSessions(ctx context.Context, userID string, since time.Time, limit int) ([]SessionSeq, error) {
	var out []SessionSeq
	var after *SessionCursor
	for len(out) < limit {
		page, more, err := s.store.Sessions(ctx, userID, min(activePage, limit-len(out)), after)
		if err != nil {
			return out, fmt.Errorf("active sessions of %s: %w", userID, err)
		}
		for _, sess := range page {
			if sess.LastActivity.Before(since) {
				return out, nil // newest first: the rest are older
			}
			out = append(out, SessionSeq{SessionID: sess.ID, LastSeq: sess.LastSeq})
		}
		if !more || len(page) == 0 {
			return out, nil
		}
		last := page[len(page)-1]
		after = &SessionCursor{Activity: last.LastActivity, ID: last.ID}
	}
	return out, nil
}

// Recover returns the messages of a session that userID's subscriber may
// have missed, in seq order and in their current state: those after
// afterSeq when afterSeq >= 0, else (the subscriber had no position) those
// created at or after since. resync is true, and no messages, when more
// than recovery.max_messages qualify. A session userID is no longer in
// yields nothing.
func (s *Service) Recover(ctx context.Context, userID, sessionID string, afterSeq int64, since time.Time) (list []Message, resync bool, err error) {
	q := HistoryQuery{Limit: s.recover}
	if afterSeq >= 0 {
		q.AfterSeq = &afterSeq
	}
	list, more, err := s.store.Messages(ctx, sessionID, userID, q)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("recover session %s: %w", sessionID, err)
	}
	if afterSeq < 0 {
		// The newest page, ascending: keep its tail created since then. When
		// even its oldest qualifies, older ones may too.
		i := 0
		for i < len(list) && list[i].CreatedAt.Before(since) {
			i++
		}
		if more && i == 0 && len(list) > 0 {
			return nil, true, nil
		}
		list = list[i:]
	} else if more {
		return nil, true, nil
	}
	s.enrichMessages(ctx, list)
	return list, false, nil
}
