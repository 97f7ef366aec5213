package stomp

import (
	"hash/maphash"
	"slices"
	"sync"
)

// registry maps a key (a session id, a user id) to the connections or
// subscriptions interested in it. It is sharded so that fan-out never takes
// a global lock; each shard keeps copy-on-write slices, so a reader holds
// the shard's read lock only long enough to load one slice header.
type registry[T comparable] struct {
	seed   maphash.Seed
	shards [64]regShard[T]
}

type regShard[T comparable] struct {
	mu sync.RWMutex
	m  map[string][]T
}

func newRegistry[T comparable]() *registry[T] {
	r := &registry[T]{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string][]T)
	}
	return r
}

func (r *registry[T]) shard(key string) *regShard[T] {
	return &r.shards[maphash.String(r.seed, key)%uint64(len(r.shards))]
}

// get returns the values for key. The slice must not be modified.
func (r *registry[T]) get(key string) []T {
	s := r.shard(key)
	s.mu.RLock()
	cs := s.m[key]
	s.mu.RUnlock()
	return cs
}

// add adds c under key unless max > 0 values are there already.
func (r *registry[T]) add(key string, c T, max int) bool {
	s := r.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.m[key]
	if max > 0 && len(cs) >= max {
		return false
	}
	next := make([]T, len(cs), len(cs)+1)
	copy(next, cs)
	s.m[key] = append(next, c)
	return true
}

func (r *registry[T]) remove(key string, c T) {
	s := r.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.m[key]
	i := slices.Index(cs, c)
	if i < 0 {
		return
	}
	if len(cs) == 1 {
		delete(s.m, key)
		return
	}
	next := make([]T, 0, len(cs)-1)
	next = append(next, cs[:i]...)
	s.m[key] = append(next, cs[i+1:]...)
}
