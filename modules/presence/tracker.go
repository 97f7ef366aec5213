// Package presence tells users which of their contacts (users who share a
// session with them) are online: online while at least one STOMP
// connection of theirs is open on any instance.
//
// Each instance counts its own connections (the STOMP hub reports connects
// and disconnects) and keeps an in-memory view of every instance's online
// users. Instances share their sets over a RabbitMQ fanout exchange
// (bus.go): a message per local change (a user's first connection on the
// instance, or their last one closing), a heartbeat every ttl/4, a full
// snapshot when asked (a new or reconnected instance, or a gap in a peer's
// sequence numbers), and a goodbye on a clean stop. An instance whose
// heartbeats stop for ttl/2 (a crash) is dropped from every view and its
// users go offline. With relay.driver memory there is one instance and no
// bus. Nothing is written to the database: a change costs one small fanout
// message, and each instance delivers the resulting presence event to its
// own connections of the user's contacts after one indexed read (who shares
// a session with the user). docs/operations.md has the costs.
package presence

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/modules/chat"
)

// FlapWindow is how long a user must stay offline before it is announced:
// a reconnect within it publishes nothing.
const FlapWindow = 2 * time.Second

// maxLastSeen bounds the remembered last-seen times (offline users).
const maxLastSeen = 200_000

// Contacts answers who shares a session with a user.
type Contacts interface {
	// Contacts returns the distinct users other than userID who share a
	// session with userID; when among is not nil, only those of among.
	Contacts(ctx context.Context, userID string, among []string) ([]string, error)
}

// Deliverer sends an event to the /user/queue/events of local connections
// (the STOMP hub).
type Deliverer interface {
	DeliverToUsers(users []string, body []byte) int
	Connections() int
}

// Status is one user's presence as GET /api/chat/presence answers it.
type Status struct {
	UserID     string     `json:"userId"`
	Online     bool       `json:"online"`
	LastSeenAt *chat.Time `json:"lastSeenAt"`
}

// Event is the presence event sent to contacts.
type Event struct {
	Type       string     `json:"type"` // "presence"
	UserID     string     `json:"userId"`
	Online     bool       `json:"online"`
	LastSeenAt *chat.Time `json:"lastSeenAt"`
}

// Options configure a Tracker.
type Options struct {
	Self     string        // this instance's id on the bus
	TTL      time.Duration // a silent instance's users are offline within this
	Flap     time.Duration // default FlapWindow
	Contacts Contacts
	Deliver  Deliverer
	Log      *slog.Logger
}

// peer is another instance as this one sees it.
type peer struct {
	users    map[string]struct{}
	lastSeq  uint64
	lastBeat time.Time
	synced   bool      // a snapshot was applied
	asked    time.Time // last snapshot request
}

// Tracker is this instance's presence view; it implements
// stomp.ConnObserver. Its methods never block on I/O.
type Tracker struct {
	o       Options
	log     *slog.Logger
	started time.Time
	work    [4]chan announcement // per-user ordered delivery workers
	seed    maphash.Seed

	sent, dropped, failed prometheus.Counter // events_total by result (metrics.go)

	mu        sync.Mutex
	bus       publisher // nil: one instance
	busUp     bool
	local     map[string]int // user → connections open here
	seq       uint64         // sequence of this instance's changes
	peers     map[string]*peer
	online    map[string]int         // user → instances (this one included) where they are online
	announced map[string]bool        // users announced online (an offline must follow)
	pending   map[string]*time.Timer // offline announcements waiting out the flap window
	lastSeen  map[string]time.Time   // offline users' last-seen times
}

type announcement struct {
	user   string
	online bool
	at     time.Time
}

// publisher is the bus as the tracker uses it: Publish never blocks.
type publisher interface {
	Publish(m wire)
}

// New returns a Tracker; Run starts its workers and timers.
func New(o Options) *Tracker {
	if o.Flap <= 0 {
		o.Flap = FlapWindow
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	discard := prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	t := &Tracker{
		o: o, log: o.Log, started: time.Now(), seed: maphash.MakeSeed(),
		sent: discard, dropped: discard, failed: discard,
		local: make(map[string]int), peers: make(map[string]*peer),
		online: make(map[string]int), announced: make(map[string]bool),
		pending: make(map[string]*time.Timer), lastSeen: make(map[string]time.Time),
	}
	for i := range t.work {
		t.work[i] = make(chan announcement, 4096)
	}
	return t
}

// beatEvery is the heartbeat period; expireAfter the silence after which
// a peer is dropped; sweepEvery how often that is checked. A crash is seen
// within expireAfter + sweepEvery < TTL.
func (t *Tracker) beatEvery() time.Duration   { return t.o.TTL / 4 }
func (t *Tracker) expireAfter() time.Duration { return t.o.TTL / 2 }
func (t *Tracker) sweepEvery() time.Duration  { return max(t.o.TTL/10, 50*time.Millisecond) }

// Run delivers announcements and sends heartbeats until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range t.work {
		wg.Add(1)
		go func() { defer wg.Done(); t.deliverLoop(ctx, t.work[i]) }()
	}
	beat := time.NewTicker(t.beatEvery())
	sweep := time.NewTicker(t.sweepEvery())
	defer beat.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-beat.C:
			t.mu.Lock()
			if t.bus != nil {
				t.bus.Publish(wire{T: kindBeat, I: t.o.Self, S: t.seq})
			}
			t.mu.Unlock()
		case now := <-sweep.C:
			t.sweep(now)
		}
	}
}

// Connected implements stomp.ConnObserver.
func (t *Tracker) Connected(userID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.local[userID]++
	if t.local[userID] == 1 {
		t.localChangeLocked(userID, true)
	}
}

// Disconnected implements stomp.ConnObserver.
func (t *Tracker) Disconnected(userID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.local[userID] - 1
	if n > 0 {
		t.local[userID] = n
		return
	}
	delete(t.local, userID)
	t.localChangeLocked(userID, false)
}

func (t *Tracker) localChangeLocked(userID string, on bool) {
	now := time.Now()
	t.seq++
	if t.bus != nil {
		t.bus.Publish(wire{T: kindDelta, I: t.o.Self, S: t.seq, U: userID, On: on, At: now.UnixMilli()})
	}
	if on {
		t.upLocked(userID, false)
	} else {
		t.downLocked(userID, now, false)
	}
}

// upLocked counts one more instance where userID is online.
func (t *Tracker) upLocked(userID string, silent bool) {
	t.online[userID]++
	if t.online[userID] > 1 {
		return
	}
	if tm := t.pending[userID]; tm != nil { // back within the flap window: nothing to say
		tm.Stop()
		delete(t.pending, userID)
		return
	}
	if t.announced[userID] {
		return
	}
	t.announced[userID] = true
	if !silent {
		t.announceLocked(announcement{user: userID, online: true})
	}
}

// downLocked counts one instance fewer where userID is online; at the
// last, the offline is announced after the flap window (at once when
// immediate: a crashed instance's users had their window already).
func (t *Tracker) downLocked(userID string, at time.Time, immediate bool) {
	n := t.online[userID] - 1
	if n > 0 {
		t.online[userID] = n
		return
	}
	delete(t.online, userID)
	t.setLastSeenLocked(userID, at)
	if !t.announced[userID] || t.pending[userID] != nil {
		return
	}
	if immediate {
		delete(t.announced, userID)
		t.announceLocked(announcement{user: userID, online: false, at: at})
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(t.o.Flap, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.pending[userID] != tm {
			return // came back, and perhaps left again: a newer timer decides
		}
		delete(t.pending, userID)
		if t.online[userID] > 0 {
			return
		}
		delete(t.announced, userID)
		t.announceLocked(announcement{user: userID, online: false, at: t.lastSeen[userID]})
	})
	t.pending[userID] = tm
}

func (t *Tracker) setLastSeenLocked(userID string, at time.Time) {
	if _, ok := t.lastSeen[userID]; !ok && len(t.lastSeen) >= maxLastSeen {
		n := 0
		for u := range t.lastSeen { // forget an arbitrary 1%: a bound, not an LRU
			delete(t.lastSeen, u)
			if n++; n >= maxLastSeen/100 {
				break
			}
		}
	}
	t.lastSeen[userID] = at.UTC().Truncate(time.Millisecond)
}

func (t *Tracker) announceLocked(a announcement) {
	w := t.work[maphash.String(t.seed, a.user)%uint64(len(t.work))]
	select {
	case w <- a:
	default:
		t.dropped.Inc()
		t.log.Warn("presence event dropped: delivery queue full", "user_id", a.user)
	}
}

// deliverLoop sends each announcement to the local connections of the
// user's contacts, in order per user.
func (t *Tracker) deliverLoop(ctx context.Context, in <-chan announcement) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-in:
			t.deliver(ctx, a)
		}
	}
}

func (t *Tracker) deliver(ctx context.Context, a announcement) {
	if t.o.Deliver.Connections() == 0 {
		return // nobody here to tell: no read
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	contacts, err := t.o.Contacts.Contacts(cctx, a.user, nil)
	cancel()
	if err != nil {
		t.failed.Inc()
		t.log.Warn("presence event not delivered: contacts unavailable", "user_id", a.user, "error", err)
		return
	}
	ev := Event{Type: "presence", UserID: a.user, Online: a.online}
	if !a.online {
		ev.LastSeenAt = &chat.Time{Time: a.at}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.log.Error("encode presence event", "error", err)
		return
	}
	t.o.Deliver.DeliverToUsers(contacts, body)
	t.sent.Inc()
}

// Status answers for users (already checked: ≤ 100 well-formed ids) as
// caller may see them: contacts (and the caller) truthfully, anyone else
// offline with no last-seen time.
func (t *Tracker) Status(ctx context.Context, caller string, users []string) ([]Status, error) {
	contacts, err := t.o.Contacts.Contacts(ctx, caller, users)
	if err != nil {
		return nil, err
	}
	may := make(map[string]bool, len(contacts)+1)
	for _, u := range contacts {
		may[u] = true
	}
	may[caller] = true
	out := make([]Status, len(users))
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, u := range users {
		out[i] = Status{UserID: u}
		if !may[u] {
			continue
		}
		if t.online[u] > 0 {
			out[i].Online = true
		} else if at, ok := t.lastSeen[u]; ok {
			out[i].LastSeenAt = &chat.Time{Time: at}
		}
	}
	return out, nil
}
