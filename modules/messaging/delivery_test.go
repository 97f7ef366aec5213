package messaging

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store/storetest"
)

// deliveryCases are the deployments chat.yaml can pick: the embedded
// default (SQLite + in-process relay, one instance), PostgreSQL with the
// in-process relay, and production (PostgreSQL + RabbitMQ, two instances).
var deliveryCases = []struct {
	name      string
	storage   func(testing.TB) config.Storage
	relay     string
	instances int
}{
	{"sqlite_memory", storetest.NewSQLite, config.RelayMemory, 1},
	{"postgres_memory", storetest.NewPostgres, config.RelayMemory, 1},
	{"postgres_amqp", storetest.NewPostgres, config.RelayAMQP, 2},
}

const (
	deliverySessions   = 20
	deliveryPerSession = 50
)

var users = []string{"alice", "bob"}

// TestDelivery stores 1,000 messages over 20 sessions through instance A
// and checks that every instance's hub gets each exactly once, in seq order
// per session.
func TestDelivery(t *testing.T) {
	for _, tc := range deliveryCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.storage(t), tc.relay)
			var ins []*instance
			for i := range tc.instances {
				ins = append(ins, startInstance(t, s, string(rune('a'+i))))
			}
			a := ins[0]
			sessions := a.createSessions(t, deliverySessions, users...)
			a.sendAll(t, sessions, deliveryPerSession, users)

			want := deliverySessions * deliveryPerSession
			for _, in := range ins {
				evs := in.hub.waitFor(t, 60*time.Second, "every message on "+in.name, func(evs []chat.Event) bool {
					n, _ := uniqueMessages(evs)
					return n >= want
				})
				assertExactlyInOrder(t, in.name, evs, sessions)
				assertSessionEvents(t, in.name, evs, sessions)
			}
		})
	}
}

// assertExactlyInOrder checks that each session's messages arrived as seq
// 1, 2, ..., deliveryPerSession: none missing, none twice, none out of order.
func assertExactlyInOrder(t *testing.T, name string, evs []chat.Event, sessions []string) {
	t.Helper()
	by := messagesBySession(evs)
	want := make([]int64, deliveryPerSession)
	for i := range want {
		want[i] = int64(i + 1)
	}
	for _, id := range sessions {
		if got := by[id]; !slices.Equal(got, want) {
			t.Errorf("%s: session %s got seqs %v, want 1..%d in order", name, id, got, deliveryPerSession)
		}
	}
	for _, ev := range evs {
		if ev.Type == chat.EventMessage && !slices.Equal(ev.Participants, users) {
			t.Fatalf("%s: message event routed to %v, want %v", name, ev.Participants, users)
		}
	}
}

// assertSessionEvents checks that each created session was announced once
// per participant, each announcement naming that participant only.
func assertSessionEvents(t *testing.T, name string, evs []chat.Event, sessions []string) {
	t.Helper()
	got := map[string][]string{}
	for _, ev := range evs {
		if ev.Type == chat.EventSession && ev.Session != nil {
			if len(ev.Participants) != 1 {
				t.Fatalf("%s: session event names %v, want one user", name, ev.Participants)
			}
			got[ev.Session.ID] = append(got[ev.Session.ID], ev.Participants[0])
		}
	}
	for _, id := range sessions {
		p := got[id]
		slices.Sort(p)
		if !slices.Equal(p, users) {
			t.Errorf("%s: session %s announced to %v, want %v", name, id, p, users)
		}
	}
}

// TestRelayOutage cuts RabbitMQ away from two instances while 500 messages
// are sent: every send commits, /readyz reports the relay, and once the
// broker is reachable again every message reaches both hubs.
func TestRelayOutage(t *testing.T) {
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	px, viaProxy := newAMQPProxy(t, s.relay.AMQP.URL)
	a := startInstance(t, s, "a", withAMQPURL(viaProxy))
	b := startInstance(t, s, "b", withAMQPURL(viaProxy))
	sessions := a.createSessions(t, 10, users...)

	a.sendAll(t, sessions[:5], 10, users) // 50 before
	b.hub.waitFor(t, 30*time.Second, "messages before the outage", func(evs []chat.Event) bool {
		n, _ := uniqueMessages(evs)
		return n >= 50
	})

	newest := newestMessage(b.hub.snapshot())
	if got := b.hub.resyncCalls(); len(got) != 0 {
		t.Fatalf("resync before any outage: %v", got)
	}
	px.Cut()
	waitRelayDown(t, a)
	a.sendAll(t, sessions, 50, users) // 500 during: every commit must succeed
	if err := a.m.Ready(context.Background()); err == nil {
		t.Error("relay check passes while RabbitMQ is unreachable")
	}
	lag := waitLag(t, a, 500)
	t.Logf("outbox lag during the outage: %d rows", lag)
	px.Restore()

	const want = 550
	for _, in := range []*instance{a, b} {
		evs := in.hub.waitFor(t, 90*time.Second, "every message on "+in.name+" after the outage", func(evs []chat.Event) bool {
			n, _ := uniqueMessages(evs)
			return n >= want
		})
		n, dups := uniqueMessages(evs)
		t.Logf("%s: %d distinct messages, %d duplicates", in.name, n, dups)
		assertSeqOrderIgnoringDuplicates(t, in.name, evs)
	}
	if err := a.m.Ready(context.Background()); err != nil {
		t.Errorf("relay check after the outage: %v", err)
	}
	// Each consumer resumed, and asked its hub to recover what was created
	// from shortly before the newest message it had handled.
	for _, in := range []*instance{a, b} {
		got := in.hub.resyncCalls()
		if len(got) == 0 {
			t.Fatalf("%s: the relay consumer resumed without a Resync", in.name)
		}
		if want := newest.Add(-resyncSlack); in == b && !got[0].Equal(want) {
			t.Errorf("%s: Resync since %v, want %v (newest message handled %v, less %v)", in.name, got[0], want, newest, resyncSlack)
		}
	}
}

// newestMessage is the latest creation time of the message events.
func newestMessage(evs []chat.Event) time.Time {
	var t time.Time
	for _, ev := range evs {
		if ev.Message != nil && ev.Message.CreatedAt.After(t) {
			t = ev.Message.CreatedAt.Time
		}
	}
	return t
}

// waitRelayDown waits until the instance's relay check fails.
func waitRelayDown(t *testing.T, in *instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for in.m.Ready(context.Background()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("relay check still passes after the cut")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLag waits until the outbox lag of in reaches at least n rows.
func waitLag(t *testing.T, in *instance, n int64) int64 {
	t.Helper()
	j := &janitor{db: in.db.SQL, driver: in.db.Dialect.Name, m: newMetrics()}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, age, err := j.lag(context.Background(), OutboxTopic, forwarderGroup)
		if err != nil {
			t.Fatal(err)
		}
		if rows >= n {
			if age <= 0 {
				t.Errorf("lag of %d rows with age %s", rows, age)
			}
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox lag %d rows, want at least %d", rows, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertSeqOrderIgnoringDuplicates checks that, dropping repeats of seqs
// already seen (as clients do), each session's messages arrive in order.
func assertSeqOrderIgnoringDuplicates(t *testing.T, name string, evs []chat.Event) {
	t.Helper()
	for id, seqs := range messagesBySession(evs) {
		var last int64
		for _, s := range seqs {
			if s <= last {
				continue // a duplicate, dropped by seq
			}
			if s != last+1 {
				t.Errorf("%s: session %s jumped from seq %d to %d", name, id, last, s)
				break
			}
			last = s
		}
	}
}

// TestCrashBeforeForward kills instance A while its forwarder holds
// committed but unforwarded rows (RabbitMQ cut away from A, its database
// sessions terminated as a crash would): instance B's forwarder takes over
// and B's hub gets every message.
func TestCrashBeforeForward(t *testing.T) {
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	px, viaProxy := newAMQPProxy(t, s.relay.AMQP.URL)
	appA := "chat_a_" + testName(t)[len(testName(t))-8:]
	a := startInstance(t, s, "a", withAMQPURL(viaProxy), withApplicationName(appA))
	sessions := a.createSessions(t, 4, users...)

	px.Cut() // A commits but cannot forward; its forwarder holds the group's rows
	waitRelayDown(t, a)
	a.sendAll(t, sessions, 25, users)
	waitLag(t, a, 100)

	b := startInstance(t, s, "b")

	// The crash: A's transactions die with its connections.
	var killed int
	err := b.db.SQL.QueryRowContext(context.Background(),
		`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, appA).Scan(&killed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("terminated %d database sessions of instance a", killed)

	evs := b.hub.waitFor(t, 90*time.Second, "A's messages on B", func(evs []chat.Event) bool {
		n, _ := uniqueMessages(evs)
		return n >= 100
	})
	n, dups := uniqueMessages(evs)
	t.Logf("b: %d distinct messages, %d duplicates", n, dups)
	assertSeqOrderIgnoringDuplicates(t, "b", evs)
}

// TestTransactionalOutbox: an event written in a transaction that rolls
// back is never forwarded; a committed one is.
func TestTransactionalOutbox(t *testing.T) {
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		s := newSetup(t, cfg, config.RelayMemory)
		a := startInstance(t, s, "a")
		sessions := a.createSessions(t, 1, users...)
		boom := errors.New("boom")
		_, _, err := a.store.AppendMessage(context.Background(), chat.NewMessage{
			ID: "01900000-0000-7000-8000-000000000001", SessionID: sessions[0], SenderID: "alice", Content: "rolled back", CreatedAt: chat.Now(),
		}, func(ctx context.Context, tx *sql.Tx, m chat.Message) error {
			if err := a.m.Events().Stored(ctx, tx, chat.Event{Type: chat.EventMessage, SessionID: m.SessionID, Message: &m, Participants: users}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("append: %v, want boom", err)
		}
		if _, err := a.send(context.Background(), sessions[0], "alice", "committed", users); err != nil {
			t.Fatal(err)
		}
		evs := a.hub.waitFor(t, 20*time.Second, "the committed message", func(evs []chat.Event) bool {
			n, _ := uniqueMessages(evs)
			return n >= 1
		})
		time.Sleep(200 * time.Millisecond) // a wrongly forwarded event would come in this time
		evs = a.hub.snapshot()
		for _, ev := range evs {
			if ev.Type == chat.EventMessage && ev.Message.Content != "committed" {
				t.Errorf("forwarded %q from a rolled-back transaction", ev.Message.Content)
			}
		}
		if by := messagesBySession(evs); !slices.Equal(by[sessions[0]], []int64{1}) {
			t.Errorf("seqs %v, want [1]", by[sessions[0]])
		}
	})
}
