package profilestest

import (
	"context"
	"slices"
	"sync"

	"github.com/chat-service/chat/modules/profiles"
)

// Fake is a programmable Provider and PairChecker: it records its calls and
// can be told to fail, to hang until the call's context ends, or to hold
// calls until released. The zero value is not usable; call NewFake.
type Fake struct {
	mu        sync.Mutex
	users     map[string]profiles.Profile
	denied    map[[2]string]bool
	err       error
	hang      bool
	gate      chan struct{}
	calls     [][]string
	pairCalls int
	started   chan []string
}

var (
	_ profiles.Provider    = (*Fake)(nil)
	_ profiles.PairChecker = (*Fake)(nil)
)

// NewFake returns a healthy Fake that knows users.
func NewFake(users ...profiles.Profile) *Fake {
	f := &Fake{
		users:   make(map[string]profiles.Profile),
		denied:  make(map[[2]string]bool),
		started: make(chan []string, 1024),
	}
	for _, u := range users {
		f.users[u.UserID] = u
	}
	return f
}

// Put adds or replaces a profile.
func (f *Fake) Put(p profiles.Profile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[p.UserID] = p
}

// Remove forgets a profile.
func (f *Fake) Remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.users, id)
}

// Deny makes CanChat refuse a and b, both directions.
func (f *Fake) Deny(a, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied[[2]string{a, b}] = true
	f.denied[[2]string{b, a}] = true
}

// FailWith makes every call return err; nil makes the Fake healthy again.
func (f *Fake) FailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Hang makes every call block until its context ends (on) or answer (off).
func (f *Fake) Hang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = on
}

// Hold makes calls block until release is called (or their context ends).
func (f *Fake) Hold() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			if f.gate == gate {
				f.gate = nil
			}
			f.mu.Unlock()
			close(gate)
		})
	}
}

// Calls is the number of Profiles calls so far.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// CallIDs returns the ids of each Profiles call, in call order.
func (f *Fake) CallIDs() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = slices.Clone(c)
	}
	return out
}

// PairCalls is the number of CanChat calls so far.
func (f *Fake) PairCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pairCalls
}

// Started receives the ids of each Profiles call as it starts (buffered;
// dropped when nobody reads and the buffer is full).
func (f *Fake) Started() <-chan []string { return f.started }

// Profiles implements profiles.Provider.
func (f *Fake) Profiles(ctx context.Context, ids []string) (map[string]profiles.Profile, error) {
	f.mu.Lock()
	f.calls = append(f.calls, slices.Clone(ids))
	err, hang, gate := f.err, f.hang, f.gate
	f.mu.Unlock()
	select {
	case f.started <- slices.Clone(ids):
	default:
	}
	if err := f.block(ctx, hang, gate); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]profiles.Profile, len(ids))
	for _, id := range ids {
		if p, ok := f.users[id]; ok {
			out[id] = p
		}
	}
	return out, nil
}

// CanChat implements profiles.PairChecker.
func (f *Fake) CanChat(ctx context.Context, from, to string) (bool, error) {
	f.mu.Lock()
	f.pairCalls++
	err, hang, gate := f.err, f.hang, f.gate
	f.mu.Unlock()
	if err := f.block(ctx, hang, gate); err != nil {
		return false, err
	}
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.denied[[2]string{from, to}], nil
}

func (f *Fake) block(ctx context.Context, hang bool, gate chan struct{}) error {
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
