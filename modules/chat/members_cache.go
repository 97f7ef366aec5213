package chat

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// Participant lists are cached, so that a send or a typing event costs no
// extra query. Membership changes (ChangeMembers) invalidate an entry at
// once on the instance that made them, and on every other instance when
// their members event arrives from the relay (ForgetMembers). Between the
// two a send may route its event with a stale list; the store tells it so
// (the session's membership version, read under the session's lock) and
// the event is then routed with the list read in the send's transaction.
const (
	membersCacheSize = 100_000
	membersCacheTTL  = 10 * time.Minute
)

// memberList is a session's participants and their membership version.
type memberList struct {
	ids     []string
	version int64
}

// memberCache caches participant lists. gen counts invalidations: a list
// read from the store while one happened is not cached, since it may
// predate the change it invalidated.
type memberCache struct {
	c   *otter.Cache[string, memberList]
	gen atomic.Uint64
}

func newMemberCache() (*memberCache, error) {
	c, err := otter.New(&otter.Options[string, memberList]{
		MaximumSize:      membersCacheSize,
		ExpiryCalculator: otter.ExpiryWriting[string, memberList](membersCacheTTL),
	})
	if err != nil {
		return nil, fmt.Errorf("chat: participants cache: %w", err)
	}
	return &memberCache{c: c}, nil
}

func (m *memberCache) forget(sessionID string) {
	m.gen.Add(1)
	m.c.Invalidate(sessionID)
}

// participants returns a session's members, from the cache when it can.
func (s *Service) participants(ctx context.Context, sessionID string) ([]string, error) {
	l, err := s.memberList(ctx, sessionID)
	return l.ids, err
}

// memberList returns a session's members and their version.
func (s *Service) memberList(ctx context.Context, sessionID string) (memberList, error) {
	if l, ok := s.members.c.GetIfPresent(sessionID); ok {
		return l, nil
	}
	gen := s.members.gen.Load()
	ids, version, err := s.store.Participants(ctx, sessionID)
	if err != nil {
		return memberList{}, err
	}
	l := memberList{ids: ids, version: version}
	if s.members.gen.Load() == gen {
		s.members.c.Set(sessionID, l)
	}
	return l, nil
}

// ForgetMembers drops the cached participants of a session. The relay calls
// it (through the gateway's hub) on every instance when a members event
// arrives, so that a removal takes effect everywhere.
func (s *Service) ForgetMembers(sessionID string) { s.members.forget(sessionID) }
