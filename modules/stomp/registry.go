package stomp

import (
	"hash/maphash"
	"slices"
	"sync"
)

// registry maps a key (a session id, a user id) to the connections
// interested in it. It is sharded so that fan-out never takes a global
// lock; each shard keeps copy-on-write slices, so a reader holds the shard's
// read lock only long enough to load one slice header.
type registry struct {
	seed   maphash.Seed
	shards [64]regShard
}

type regShard struct {
	mu sync.RWMutex
	m  map[string][]*conn
}

func newRegistry() *registry {
	r := &registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string][]*conn)
	}
	return r
}

func (r *registry) shard(key string) *regShard {
	return &r.shards[maphash.String(r.seed, key)%uint64(len(r.shards))]
}

// get returns the connections for key. The slice must not be modified.
func (r *registry) get(key string) []*conn {
	s := r.shard(key)
	s.mu.RLock()
	cs := s.m[key]
	s.mu.RUnlock()
	return cs
}

// add adds c under key unless max > 0 connections are there already.
func (r *registry) add(key string, c *conn, max int) bool {
	s := r.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.m[key]
	if max > 0 && len(cs) >= max {
		return false
	}
	next := make([]*conn, len(cs), len(cs)+1)
	copy(next, cs)
	s.m[key] = append(next, c)
	return true
}

func (r *registry) remove(key string, c *conn) {
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
	next := make([]*conn, 0, len(cs)-1)
	next = append(next, cs[:i]...)
	s.m[key] = append(next, cs[i+1:]...)
}
