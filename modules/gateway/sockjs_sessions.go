package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// sockjsSessions binds SockJS session ids to their users.
type sockjsSessions struct {
	linger time.Duration // how long an unused binding outlives its session

	mu sync.Mutex
	m  map[string]*sockjsBinding
}

// sockjsBinding is one session id's owner and what its transport holds.
type sockjsBinding struct {
	user    string
	refs    int     // STOMP connections running on the session (guarded by sockjsSessions.mu)
	pending *ticket // admission taken by the request that creates the session (guarded likewise)
	backlog atomic.Int64
}

func newSockJSSessions(linger time.Duration) *sockjsSessions {
	return &sockjsSessions{linger: linger, m: make(map[string]*sockjsBinding)}
}

func (s *sockjsSessions) lookup(sid string) *sockjsBinding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[sid]
}

// claim binds sid to user unless it is bound to another user (nil, nil).
// When no connection runs on the session yet, the request is about to
// create it: admit is asked for a ticket first, which the session's
// connection takes over.
func (s *sockjsSessions) claim(sid, user string, admit func() (*ticket, *refusal)) (*sockjsBinding, *refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[sid]
	if b != nil && b.user != user {
		return nil, nil
	}
	if b != nil && (b.refs > 0 || b.pending != nil) {
		return b, nil
	}
	t, refused := admit()
	if refused != nil {
		return nil, refused
	}
	if b == nil {
		b = &sockjsBinding{user: user}
		s.m[sid] = b
	}
	b.pending = t
	s.expireLater(sid, b)
	return b, nil
}

// start registers the connection of a session that claim created; it
// returns the binding and the admission ticket, or nil when the session
// is not bound to user.
func (s *sockjsSessions) start(sid, user string) (*sockjsBinding, *ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[sid]
	if b == nil || b.user != user {
		return nil, nil
	}
	b.refs++
	t := b.pending
	b.pending = nil
	b.backlog.Store(0)
	return b, t
}

// stop unregisters a connection started on b.
func (s *sockjsSessions) stop(sid string, b *sockjsBinding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.refs--
	s.expireLater(sid, b)
}

// expireLater forgets b once nothing has used it for linger: by then
// sockjs-go has dropped the session too. Called with s.mu held.
func (s *sockjsSessions) expireLater(sid string, b *sockjsBinding) {
	time.AfterFunc(s.linger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.m[sid] != b || b.refs > 0 {
			return
		}
		if b.pending != nil { // admitted, but no session came of it
			b.pending.done()
			b.pending = nil
		}
		delete(s.m, sid)
	})
}

// drained counts n bytes a receiving response carried to the client.
func (b *sockjsBinding) drained(n int) {
	if b == nil || n <= 0 {
		return
	}
	for {
		old := b.backlog.Load()
		if old <= 0 || b.backlog.CompareAndSwap(old, max(0, old-int64(n))) {
			return
		}
	}
}
