package messaging

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestForwarderPartialConfirm: when the relay confirms only the first
// publications of a batch, only the rows before the failure are
// acknowledged; the rest and every batch published after them are
// published again, in order, and the offset reaches the end. Confirmations
// come late, so batches overlap.
func TestForwarderPartialConfirm(t *testing.T) {
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		s := newSetup(t, cfg, config.RelayMemory)
		db := openStore(t, cfg)
		m, err := New(Params{DB: db.SQL, Storage: s.storage, Relay: s.relay, Outbox: s.outbox, Commands: s.commands, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		in := &instance{name: "a", db: db, store: store.New(db), m: m, hub: newRecordingHub()}
		sessions := in.createSessions(t, 4, users...)
		in.sendAll(t, sessions[:2], 10, users) // 24 rows waiting: the first batch fails after 5

		relay := &flakyRelay{hub: in.hub, failAfter: 5}
		reader := m.backend.batchReader(OutboxTopic, forwarderGroup, 100)
		ctx, cancel := context.WithCancel(context.Background())
		if err := reader.init(ctx); err != nil {
			t.Fatal(err)
		}
		f := &forwarder{reader: reader, relay: relay, idle: 10 * time.Millisecond, wake: m.outbox.wake, m: m.metrics, log: testLogger(t)}
		done := make(chan struct{})
		go func() { defer close(done); f.run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		in.sendAll(t, sessions[2:], 10, users) // while batches are in flight

		evs := in.hub.waitFor(t, 20*time.Second, "every message", func(evs []chat.Event) bool {
			n, _ := uniqueMessages(evs)
			return n >= 40
		})
		if relay.failures() != 1 {
			t.Fatalf("relay failed %d times, want 1", relay.failures())
		}
		// A batch published after the failed one, and delivered before the
		// failure was known, is published again: a replay clients drop by
		// seq. Nothing is missing or out of order.
		assertSeqOrderIgnoringDuplicates(t, "hub", evs)
		j := &janitor{db: db.SQL, driver: db.Dialect.Name, m: newMetrics(), log: testLogger(t)}
		waitNoLag(t, j)
	})
}

// flakyRelay hands publications to a hub and confirms them a little later.
// The first publishAll of more than failAfter publications delivers only
// failAfter of them and fails, and so does every publishAll in the next
// 50 ms, as a closed channel would.
type flakyRelay struct {
	hub       Hub
	failAfter int

	mu        sync.Mutex
	failed    int
	downUntil time.Time
}

func (r *flakyRelay) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *flakyRelay) publish(ctx context.Context, key string, msg *message.Message) error {
	c := r.publishAll(ctx, []publication{{key: key, msg: msg}})
	<-c.done
	return c.err
}

func (r *flakyRelay) publishAll(_ context.Context, pubs []publication) *confirmation {
	r.mu.Lock()
	defer r.mu.Unlock()
	errClosed := errors.New("channel closed")
	if time.Now().Before(r.downUntil) {
		return confirmed(0, errClosed)
	}
	c := &confirmation{done: make(chan struct{}), n: len(pubs)}
	if r.failed == 0 && len(pubs) > r.failAfter {
		c.n, c.err = r.failAfter, errClosed
		r.failed++
		r.downUntil = time.Now().Add(50 * time.Millisecond)
	}
	for _, p := range pubs[:c.n] {
		ev, err := decodeEvent(p.msg.Payload)
		if err != nil {
			return confirmed(0, err)
		}
		r.hub.Deliver(ev)
	}
	time.AfterFunc(5*time.Millisecond, func() { close(c.done) })
	return c
}

func (r *flakyRelay) events() (message.Subscriber, string) { return nil, "" }
func (r *flakyRelay) ping(context.Context) error           { return nil }
func (r *flakyRelay) onResume(func())                      {}
func (r *flakyRelay) close() error                         { return nil }

// assertExactlyInOrderN checks that each session's messages arrived as seq
// 1..n, each once.
func assertExactlyInOrderN(t *testing.T, evs []chat.Event, sessions []string, n int) {
	t.Helper()
	by := messagesBySession(evs)
	for _, id := range sessions {
		got := by[id]
		ok := len(got) == n
		for i := 0; ok && i < n; i++ {
			ok = got[i] == int64(i+1)
		}
		if !ok {
			t.Errorf("session %s got seqs %v, want 1..%d once each, in order", id, got, n)
		}
	}
}

// TestForwarderPassesOpenTransaction (PostgreSQL): events committed while
// an older transaction that wrote to the outbox is still open are forwarded
// at once, without waiting for it; the offset does not pass that
// transaction's row until it commits; then the row is forwarded once and
// the lag comes to zero. Also with a pool of one connection, where the
// forwarder gives its connection back after every round.
func TestForwarderPassesOpenTransaction(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns int
	}{
		{"pool_16", 16},
		{"pool_1", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storage := storetest.NewPostgres(t)
			storage.MaxOpenConns = tc.conns
			s := newSetup(t, storage, config.RelayMemory)
			a := startInstance(t, s, "a")
			sessions := a.createSessions(t, 2, users...)

			// The old transaction: another pool, an outbox row for session 2.
			oneConn := storage
			oneConn.MaxOpenConns = 1
			other := openStore(t, oneConn)
			ctx := context.Background()
			tx, err := other.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }() // after Commit: nothing to undo
			late := chat.Message{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sessions[1], Seq: 1, SenderID: "bob", Content: "late", CreatedAt: chat.Now()}
			if err := a.m.Events().Stored(ctx, tx, chat.Event{Type: chat.EventMessage, SessionID: late.SessionID, Message: &late, Participants: users}); err != nil {
				t.Fatal(err)
			}

			const n = 20
			for i := range n {
				if _, err := a.send(ctx, sessions[0], "alice", fmt.Sprintf("m %d", i), users); err != nil {
					t.Fatal(err)
				}
			}
			a.hub.waitFor(t, 10*time.Second, "the messages sent after the open transaction", func(evs []chat.Event) bool {
				return len(messagesBySession(evs)[sessions[0]]) >= n
			})
			j := &janitor{db: a.db.SQL, driver: a.db.Dialect.Name, m: newMetrics(), log: testLogger(t)}
			if rows, _, err := j.lag(ctx, OutboxTopic, forwarderGroup); err != nil || rows < n {
				t.Errorf("lag while the old transaction is open = %d rows (%v), want at least %d: the offset passed a running transaction", rows, err, n)
			}

			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			evs := a.hub.waitFor(t, 10*time.Second, "the old transaction's event", func(evs []chat.Event) bool {
				return len(messagesBySession(evs)[sessions[1]]) >= 1
			})
			waitNoLag(t, j)
			evs = a.hub.snapshot()
			if _, dups := uniqueMessages(evs); dups != 0 {
				t.Errorf("%d duplicates, want none", dups)
			}
			assertExactlyInOrderN(t, evs, sessions[:1], n)
		})
	}
}

// TestForwarderGivesBackOutOfKeyOrder (PostgreSQL): a batch is published
// in offset order, which can differ from the offset's (transaction id,
// offset) order. When the relay confirms only the first row of such a
// batch, the offset must not move over the row given back, whose key is
// lower.
func TestForwarderGivesBackOutOfKeyOrder(t *testing.T) {
	storage := storetest.NewPostgres(t)
	s := newSetup(t, storage, config.RelayMemory)
	db := openStore(t, storage)
	m, err := New(Params{DB: db.SQL, Storage: s.storage, Relay: s.relay, Outbox: s.outbox, Commands: s.commands, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{name: "a", db: db, store: store.New(db), m: m, hub: newRecordingHub()}
	sessions := in.createSessions(t, 2, users...)
	ctx := context.Background()
	event := func(session string, seq int64) chat.Event {
		msg := chat.Message{ID: uuid.Must(uuid.NewV7()).String(), SessionID: session, Seq: seq, SenderID: "alice", Content: "x", CreatedAt: chat.Now()}
		return chat.Event{Type: chat.EventMessage, SessionID: session, Message: &msg, Participants: users}
	}
	// T1 takes its transaction id first and writes its row last.
	t1, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = t1.Rollback() }() // after Commit: nothing to undo
	if _, err := t1.ExecContext(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	t2, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Events().Stored(ctx, t2, event(sessions[0], 1)); err != nil {
		t.Fatal(err)
	}
	if err := t2.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := m.Events().Stored(ctx, t1, event(sessions[1], 1)); err != nil {
		t.Fatal(err)
	}
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}

	// The batch: two session announcements (two publications each), T2's
	// row, T1's row. Confirming 5 of 6 publications gives back T1's alone.
	relay := &flakyRelay{hub: in.hub, failAfter: 5}
	reader := m.backend.batchReader(OutboxTopic, forwarderGroup, 100)
	runCtx, cancel := context.WithCancel(ctx)
	if err := reader.init(runCtx); err != nil {
		t.Fatal(err)
	}
	f := &forwarder{reader: reader, relay: relay, idle: 10 * time.Millisecond, wake: m.outbox.wake, m: m.metrics, log: testLogger(t)}
	done := make(chan struct{})
	go func() { defer close(done); f.run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	evs := in.hub.waitFor(t, 10*time.Second, "both messages", func(evs []chat.Event) bool {
		n, _ := uniqueMessages(evs)
		return n >= 2
	})
	if relay.failures() != 1 {
		t.Fatalf("relay failed %d times, want 1", relay.failures())
	}
	by := messagesBySession(evs)
	if len(by[sessions[0]]) != 1 || len(by[sessions[1]]) != 1 {
		t.Errorf("got %v, want one message in each session", by)
	}
	j := &janitor{db: db.SQL, driver: db.Dialect.Name, m: newMetrics(), log: testLogger(t)}
	waitNoLag(t, j)
}
