package presence

import (
	"time"
)

// Kinds of bus messages.
const (
	kindHello = "hello" // a new or reconnected instance: everyone, send a snapshot
	kindSync  = "sync"  // To, send a snapshot (a gap in its sequence was seen)
	kindSnap  = "snap"  // the sender's online users as of sequence S
	kindDelta = "d"     // U came online (On) or went offline on the sender, sequence S
	kindBeat  = "beat"  // the sender is alive; its last sequence is S
	kindBye   = "bye"   // the sender stops; its users leave it
)

// wire is one bus message (JSON).
type wire struct {
	T     string   `json:"t"`
	I     string   `json:"i"`
	To    string   `json:"to,omitempty"`
	S     uint64   `json:"s,omitempty"`
	U     string   `json:"u,omitempty"`
	On    bool     `json:"on,omitempty"`
	At    int64    `json:"at,omitempty"` // unix milliseconds
	Users []string `json:"users,omitempty"`
}

// attach connects the tracker to a bus; called once, before Run.
func (t *Tracker) attach(b publisher) {
	t.mu.Lock()
	t.bus = b
	t.mu.Unlock()
}

// snapshotLocked is this instance's online users as of its sequence.
func (t *Tracker) snapshotLocked() wire {
	users := make([]string, 0, len(t.local))
	for u := range t.local {
		users = append(users, u)
	}
	return wire{T: kindSnap, I: t.o.Self, S: t.seq, Users: users}
}

// busConnected is called by the bus after it (re)connected and before it
// takes further messages: peers get a grace period (nothing was heard
// while disconnected), and the bus publishes our snapshot and a hello.
func (t *Tracker) busConnected() wire {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.busUp = true
	now := time.Now()
	for _, p := range t.peers {
		p.lastBeat = now
	}
	return t.snapshotLocked()
}

// busDisconnected freezes the view: peers are not expired while this
// instance cannot hear them.
func (t *Tracker) busDisconnected() {
	t.mu.Lock()
	t.busUp = false
	t.mu.Unlock()
}

// receive applies one message from the bus.
func (t *Tracker) receive(m wire) {
	if m.I == "" || m.I == t.o.Self {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[m.I]
	switch m.T {
	case kindHello:
		if t.bus != nil {
			t.bus.Publish(t.snapshotLocked())
		}
		return
	case kindSync:
		if m.To == t.o.Self && t.bus != nil {
			t.bus.Publish(t.snapshotLocked())
		}
		return
	case kindBye:
		if p != nil {
			delete(t.peers, m.I)
			at := time.UnixMilli(m.At)
			for u := range p.users {
				t.downLocked(u, at, false) // they may be reconnecting elsewhere: flap rule
			}
		}
		return
	}
	if p == nil {
		p = &peer{users: make(map[string]struct{})}
		t.peers[m.I] = p
	}
	p.lastBeat = now
	switch m.T {
	case kindSnap:
		// The first snapshot of a peer heard in this instance's first
		// moments is the state it joins, not news.
		silent := !p.synced && now.Sub(t.started) < t.beatEvery()
		next := make(map[string]struct{}, len(m.Users))
		for _, u := range m.Users {
			next[u] = struct{}{}
			if _, ok := p.users[u]; !ok {
				t.upLocked(u, silent)
			}
		}
		for u := range p.users {
			if _, ok := next[u]; !ok {
				t.downLocked(u, now, false)
			}
		}
		p.users, p.lastSeq, p.synced = next, m.S, true
	case kindDelta:
		if !p.synced || m.S != p.lastSeq+1 {
			t.askLocked(m.I, p, now)
		}
		p.lastSeq = m.S
		_, has := p.users[m.U]
		switch {
		case m.On && !has:
			p.users[m.U] = struct{}{}
			t.upLocked(m.U, false)
		case !m.On && has:
			delete(p.users, m.U)
			t.downLocked(m.U, time.UnixMilli(m.At), false)
		}
	case kindBeat:
		if !p.synced || m.S != p.lastSeq {
			t.askLocked(m.I, p, now)
		}
	}
}

// askLocked asks peer id for a snapshot, at most once per heartbeat period.
func (t *Tracker) askLocked(id string, p *peer, now time.Time) {
	if t.bus == nil || now.Sub(p.asked) < t.beatEvery() {
		return
	}
	p.asked = now
	t.bus.Publish(wire{T: kindSync, I: t.o.Self, To: id})
}

// sweep drops peers silent for expireAfter: their users go offline at once,
// last seen at the peer's last heartbeat.
func (t *Tracker) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.busUp {
		return
	}
	for id, p := range t.peers {
		if now.Sub(p.lastBeat) <= t.expireAfter() {
			continue
		}
		delete(t.peers, id)
		t.log.Warn("presence: instance silent, its users are offline", "instance", id, "users", len(p.users))
		for u := range p.users {
			t.downLocked(u, p.lastBeat, true)
		}
	}
}
