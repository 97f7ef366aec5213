// Package chat is the domain: create sessions, send, history, read markers,
// unread counts and typing. Validation and authorization rules live here
// once; the REST and STOMP edges decode, call the Service and map its errors.
// It knows no HTTP, STOMP or SQL text.
package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/profiles"
)

// Events publishes what happened. Stored events are written inside the
// transaction that stored their cause (the transactional outbox): commit
// means both or neither. Transient events (typing) are not stored.
type Events interface {
	Stored(ctx context.Context, tx *sql.Tx, evs ...Event) error
	Transient(ctx context.Context, ev Event) error
}

// Service carries out every chat operation for an authenticated user.
type Service struct {
	store   Store
	events  Events
	dir     profiles.Directory
	limits  config.Limits
	recover int
	limiter *Limiter     // sends
	reads   *Limiter     // history, lists, unread, replays; nil: unlimited
	members *memberCache // session id → participants
	log     *slog.Logger
	// sends batches concurrent sends into shared transactions
	// (storage.group_commit); nil when it is off.
	sends    *batcher[*sendGroup]
	maxBatch int
}

// Deps are what a Service needs.
type Deps struct {
	Store    Store
	Events   Events
	Profiles profiles.Directory
	Limits   config.Limits
	Recovery config.Recovery
	// GroupCommit batches concurrent sends (off when MaxWait is 0).
	GroupCommit config.GroupCommit
	// Writers is how many batches may be stored at once; 1 for a database
	// with one writer (SQLite). 0: ask the store (ConcurrentWriters), else 1.
	Writers int
	Log     *slog.Logger
}

// NewService builds the domain service. Close stops its group commit.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Events == nil || d.Profiles == nil {
		return nil, errors.New("chat: store, events and profiles are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	members, err := newMemberCache()
	if err != nil {
		return nil, err
	}
	s := &Service{
		store: d.Store, events: d.Events, dir: d.Profiles, limits: d.Limits,
		recover: d.Recovery.MaxMessages, limiter: NewLimiter(d.Limits.RatePerSecond, d.Limits.Burst),
		reads:   NewReadLimiter(d.Limits.ReadRatePerSecond, d.Limits.ReadBurst()),
		members: members, log: d.Log, maxBatch: max(d.GroupCommit.MaxBatch, 1),
	}
	if d.GroupCommit.Enabled() {
		writers := d.Writers
		if w, ok := d.Store.(interface{ ConcurrentWriters() int }); ok && writers == 0 {
			writers = w.ConcurrentWriters()
		}
		s.sends = newBatcher(writers, s.maxBatch, d.GroupCommit.MaxWait, groupSize, s.storeBatch)
	}
	return s, nil
}

// Close stops the group commit: sends after it fail as unavailable.
func (s *Service) Close() {
	if s.sends != nil {
		s.sends.close()
	}
}

var (
	userIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,128}$`)
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

// ValidUserID reports whether id is a well-formed user id.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// ValidSessionID reports whether id is a well-formed session id (a UUID).
func ValidSessionID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

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
		if !ValidUserID(p) {
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
	if !ValidSessionID(id) {
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

// History pages a session's messages, ascending by seq.
func (s *Service) History(ctx context.Context, userID, sessionID string, q HistoryQuery) ([]Message, bool, error) {
	if !ValidSessionID(sessionID) {
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

// MarkRead moves the caller's read marker up to seq (clamped, monotonic) and
// publishes one read event when it moved.
func (s *Service) MarkRead(ctx context.Context, userID, sessionID string, seq int64) error {
	if !ValidSessionID(sessionID) {
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

// Typing relays a transient typing event to the other participants. It
// spends no rate budget of sends; the gateway rate-limits typing itself.
func (s *Service) Typing(ctx context.Context, userID, sessionID string) error {
	if !ValidSessionID(sessionID) {
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
	if !ValidSessionID(sessionID) {
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

// mapNotFound turns the store's bare ErrNotFound into the API's session_not_found.
func (s *Service) mapNotFound(err error) error {
	var e *Error
	if errors.Is(err, ErrNotFound) && !errors.As(err, &e) {
		return notFound()
	}
	return err
}

func (s *Service) sender(ctx context.Context, userID string) *Sender {
	p, ok := s.dir.Lookup(ctx, []string{userID})[userID]
	if !ok {
		return nil
	}
	return &Sender{UserID: userID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
}

func (s *Service) enrichMessages(ctx context.Context, list []Message) {
	ids := make([]string, 0, 4)
	for _, m := range list {
		if !slices.Contains(ids, m.SenderID) {
			ids = append(ids, m.SenderID)
		}
	}
	if len(ids) == 0 {
		return
	}
	found := s.dir.Lookup(ctx, ids)
	for i := range list {
		if p, ok := found[list[i].SenderID]; ok {
			list[i].Sender = &Sender{UserID: p.UserID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
		}
	}
}

func (s *Service) enrichSessions(ctx context.Context, list []*Session) {
	var ids []string
	for _, sess := range list {
		for _, p := range sess.Participants {
			if !slices.Contains(ids, p.UserID) {
				ids = append(ids, p.UserID)
			}
		}
		if m := sess.LastMessage; m != nil && !slices.Contains(ids, m.SenderID) {
			ids = append(ids, m.SenderID)
		}
	}
	if len(ids) == 0 {
		return
	}
	found := s.dir.Lookup(ctx, ids)
	for _, sess := range list {
		for i := range sess.Participants {
			if p, ok := found[sess.Participants[i].UserID]; ok {
				sess.Participants[i].DisplayName, sess.Participants[i].AvatarURL = p.DisplayName, p.AvatarURL
			}
		}
		if m := sess.LastMessage; m != nil {
			if p, ok := found[m.SenderID]; ok {
				m.Sender = &Sender{UserID: p.UserID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
			}
		}
	}
}

func (sess Session) memberIDs() []string {
	ids := make([]string, len(sess.Participants))
	for i, p := range sess.Participants {
		ids[i] = p.UserID
	}
	return ids
}

// hasControl reports whether s holds a C0 control character other than tab,
// LF and CR. NUL in particular: PostgreSQL text cannot store it, and no
// client means to send the others.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
