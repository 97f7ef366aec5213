package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chat-service/chat/modules/ident"
)

// Sessions: create, get, list, and who is in one.

// CreateSessionRequest is the body of POST /api/chat/sessions.
type CreateSessionRequest struct {
	Participants []string `json:"participants"`
	Title        *string  `json:"title"`
	Type         *string  `json:"type"`
}

// CreateSession makes a direct or group session with the caller in it, or
// returns the caller's existing direct session with that one other user.
func (s *Service) CreateSession(ctx context.Context, userID string, req CreateSessionRequest) (Session, bool, error) {
	if req.Participants == nil {
		return Session{}, false, invalid("invalid_participants", "participants is required")
	}
	members := []string{userID}
	for _, p := range req.Participants {
		if !ident.ValidUserID(p) {
			return Session{}, false, invalid("invalid_participants", "participant %q is not a valid user id", truncate(p, 140))
		}
		if !slices.Contains(members, p) {
			members = append(members, p)
		}
	}
	if len(members) < 2 {
		return Session{}, false, invalid("invalid_participants", "at least one participant other than the caller is required")
	}
	if len(members) > s.limits.MaxParticipants {
		return Session{}, false, invalid("invalid_participants", "at most %d participants, the caller included", s.limits.MaxParticipants)
	}
	if req.Title != nil {
		if n := utf8.RuneCountInString(*req.Title); n < 1 || n > 200 || !utf8.ValidString(*req.Title) {
			return Session{}, false, invalid("invalid_title", "title must be 1 to 200 characters")
		}
		if hasControl(*req.Title) {
			return Session{}, false, invalid("invalid_title", "title must not contain control characters other than tab, LF and CR")
		}
	}
	typ := TypeGroup
	if len(members) == 2 && req.Title == nil {
		typ = TypeDirect
	}
	if req.Type != nil {
		switch *req.Type {
		case TypeDirect:
			if len(members) != 2 {
				return Session{}, false, invalid("invalid_type", "a direct session has exactly one other participant")
			}
			if req.Title != nil {
				return Session{}, false, invalid("invalid_title", "a direct session has no title")
			}
		case TypeGroup:
		default:
			return Session{}, false, invalid("invalid_type", "type must be direct or group")
		}
		typ = *req.Type
	}
	// Creating sessions spends the same per-user budget as sends: both write.
	if err := s.limiter.Allow(userID); err != nil {
		return Session{}, false, err
	}
	for _, other := range members[1:] {
		if !s.dir.CanChat(ctx, userID, other) {
			return Session{}, false, &Error{Kind: ErrForbidden, Code: "chat_not_allowed", Detail: "the profile provider does not allow this pairing"}
		}
	}
	ns := NewSession{
		ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Title: req.Title,
		CreatorID: userID, Participants: members, CreatedAt: Now(),
	}
	if typ == TypeDirect {
		ns.DirectKey = DirectKey(members[0], members[1])
	}
	sess, created, err := s.store.CreateSession(ctx, ns, func(ctx context.Context, tx *sql.Tx, sess Session) error {
		return s.events.Stored(ctx, tx, Event{Type: EventSession, Session: &sess, Participants: sess.memberIDs()})
	})
	if err != nil {
		return Session{}, false, fmt.Errorf("create session: %w", err)
	}
	s.enrichSessions(ctx, []*Session{&sess})
	return sess, created, nil
}

// DirectKey identifies the one direct session of a pair, in either order.
func DirectKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b // '|' cannot occur in a user id
}

// Session returns one of the caller's sessions.
func (s *Service) Session(ctx context.Context, userID, id string) (Session, error) {
	if !ident.ValidSessionID(id) {
		return Session{}, invalid("invalid_session_id", "session id must be a UUID")
	}
	sess, err := s.store.Session(ctx, id, userID)
	if err != nil {
		return Session{}, s.mapNotFound(fmt.Errorf("get session %s: %w", id, err))
	}
	s.enrichSessions(ctx, []*Session{&sess})
	return sess, nil
}

// Sessions lists the caller's sessions, most recent activity first.
// cursor is the opaque nextCursor of the previous page, or "".
func (s *Service) Sessions(ctx context.Context, userID string, limit int, cursor string) ([]Session, string, error) {
	var after *SessionCursor
	if cursor != "" {
		c, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", invalid("invalid_cursor", "cursor is not one this service issued")
		}
		after = &c
	}
	if err := s.reads.Allow(userID); err != nil {
		return nil, "", err
	}
	list, more, err := s.store.Sessions(ctx, userID, limit, after)
	if err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	next := ""
	if more && len(list) > 0 {
		last := list[len(list)-1]
		next = encodeCursor(SessionCursor{Activity: last.LastActivity, ID: last.ID})
	}
	ptrs := make([]*Session, len(list))
	for i := range list {
		ptrs[i] = &list[i]
	}
	s.enrichSessions(ctx, ptrs)
	return list, next, nil
}

// Typing relays a transient typing event to the other participants. It
// spends no rate budget of sends; the gateway rate-limits typing itself.
func (s *Service) Typing(ctx context.Context, userID, sessionID string) error {
	if !ident.ValidSessionID(sessionID) {
		return invalid("invalid_session_id", "session id must be a UUID")
	}
	ps, err := s.participants(ctx, sessionID)
	if err != nil {
		return s.mapNotFound(fmt.Errorf("typing in session %s: %w", sessionID, err))
	}
	if !slices.Contains(ps, userID) {
		return notFound()
	}
	return s.events.Transient(ctx, Event{Type: EventTyping, SessionID: sessionID, UserID: userID, Participants: ps, Except: userID})
}

// IsParticipant reports whether userID is in the session; a malformed or
// unknown session is simply false.
func (s *Service) IsParticipant(ctx context.Context, sessionID, userID string) (bool, error) {
	if !ident.ValidSessionID(sessionID) {
		return false, nil
	}
	ps, err := s.participants(ctx, sessionID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("participants of %s: %w", sessionID, err)
	}
	return slices.Contains(ps, userID), nil
}

func (sess Session) memberIDs() []string {
	ids := make([]string, len(sess.Participants))
	for i, p := range sess.Participants {
		ids[i] = p.UserID
	}
	return ids
}
