// Package chat is the domain: create sessions, send, history, read markers,
// unread counts and typing. Validation and authorization rules live here
// once; the REST and STOMP edges decode, call the Service and map the error
// kinds it returns (modules/edge). It knows no HTTP, STOMP or SQL text.
package chat

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"

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

// mapNotFound turns the store's bare ErrNotFound into the API's session_not_found.
func (s *Service) mapNotFound(err error) error {
	var e *Error
	if errors.Is(err, ErrNotFound) && !errors.As(err, &e) {
		return notFound()
	}
	return err
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
