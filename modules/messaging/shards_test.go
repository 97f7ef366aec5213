package messaging

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store/storetest"
)

// newService is the domain service over in's store and outbox, as the
// platform assembles it.
func newService(t testing.TB, in *instance) *chat.Service {
	t.Helper()
	svc, err := chat.NewService(chat.Deps{
		Store: in.store, Events: in.m.Events(), Profiles: openDirectory{},
		Limits:      config.Limits{MaxMessageBytes: 4096, MaxParticipants: 100, RatePerSecond: 1000, Burst: 1000},
		Recovery:    config.Recovery{MaxMessages: 1000},
		GroupCommit: config.GroupCommit{MaxBatch: 256, MaxWait: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

// storedContents returns the contents of a session's messages in seq order,
// failing the test on a gap.
func storedContents(t testing.TB, in *instance, sessionID string) []string {
	t.Helper()
	var out []string
	after := int64(0)
	for {
		list, more, err := in.store.Messages(context.Background(), sessionID, users[0], chat.HistoryQuery{Limit: 500, AfterSeq: &after})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list {
			if m.Seq != after+1 {
				t.Fatalf("session %s: seq %d after %d", sessionID, m.Seq, after)
			}
			after = m.Seq
			out = append(out, m.Content)
		}
		if !more {
			return out
		}
	}
}

// waitStoredCount waits until the sessions hold n messages in total.
func waitStoredCount(t testing.TB, in *instance, sessions []string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		total := 0
		for _, id := range sessions {
			sess, err := in.store.Session(context.Background(), id, users[0])
			if err != nil {
				t.Fatal(err)
			}
			total += int(sess.LastSeq)
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages stored after %s", total, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertStoredInOrder checks that session i holds exactly the contents
// "s<i> m<0..perSession-1>", in that order, each once.
func assertStoredInOrder(t testing.TB, in *instance, sessions []string, perSession int) {
	t.Helper()
	for i, id := range sessions {
		got := storedContents(t, in, id)
		if len(got) != perSession {
			t.Fatalf("session %d holds %d messages, want %d (each command once)", i, len(got), perSession)
		}
		for j, c := range got {
			if want := fmt.Sprintf("s%d m%d", i, j); c != want {
				t.Fatalf("session %d: message %d is %q, want %q (the order sent)", i, j+1, c, want)
			}
		}
	}
}

func (in *instance) amqpCommands(t testing.TB) *amqpCommands {
	q, ok := in.m.Commands().queue().(*amqpCommands)
	if !ok {
		t.Fatalf("%s has no RabbitMQ command queue", in.name)
	}
	return q
}

// TestShardedCommandQueue: 5,000 sends over 100 sessions, submitted as
// STOMP submits them (no clientMessageId), consumed by two instances. The
// shards spread over both; then the instance consuming cuts out mid-run
// (its RabbitMQ connections die, unacknowledged batches return to their
// queues) and the other takes its shards over. Every session ends with
// exactly its messages, each once, in the order they were sent.
func TestShardedCommandQueue(t *testing.T) {
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	s.commands.Shards = 8
	px, viaProxy := newAMQPProxy(t, s.relay.AMQP.URL)
	senderA, senderB := &lazySender{}, &lazySender{}
	a := startInstance(t, s, "a", withSender(senderA), withAMQPURL(viaProxy))
	b := startInstance(t, s, "b", withSender(senderB))
	senderA.s.Store(newService(t, a))
	senderB.s.Store(newService(t, b))

	const sessions, perSession = 100, 50
	ids := b.createSessions(t, sessions, users...)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for w := range 10 { // each submitter owns 10 sessions and sends to them in turn
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perSession {
				for i := w; i < sessions; i += 10 {
					req := chat.SendRequest{SessionID: ids[i], Content: fmt.Sprintf("s%d m%d", i, j)}
					if err := b.m.Commands().Submit(ctx, "alice", req); err != nil {
						errs <- err
						return
					}
				}
				time.Sleep(time.Duration(perSession-j) * time.Millisecond) // spread over a few seconds
			}
		}()
	}

	// The shards spread: both instances store commands.
	deadline := time.Now().Add(30 * time.Second)
	for a.amqpCommands(t).consumed.Load() == 0 || b.amqpCommands(t).consumed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("shards not shared after 30 s: a consumed %d, b %d", a.amqpCommands(t).consumed.Load(), b.amqpCommands(t).consumed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	px.Cut() // a is gone for RabbitMQ: b takes every shard
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}
	waitStoredCount(t, b, ids, sessions*perSession, 60*time.Second)
	assertStoredInOrder(t, b, ids, perSession)
}

// stuckSender fails every batch as unavailable: nothing is acknowledged,
// so commands stay queued.
type stuckSender struct{}

func (stuckSender) SendQueued(context.Context, []chat.QueuedSend) ([]chat.Appended, error) {
	return nil, fmt.Errorf("store: %w", chat.ErrUnavailable)
}

// TestReshardingKeepsQueuedCommands: commands queued under one sharding
// (4 shards), and in the unsharded queue of older versions, are all stored,
// once and in order per session, by an instance started with another (2
// shards), which drains the queues it does not use first and deletes them.
func TestReshardingKeepsQueuedCommands(t *testing.T) {
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	const sessions, perSession = 12, 20
	old := s
	old.commands.Shards = 4
	first := startInstance(t, old, "old", withSender(stuckSender{}))
	ids := first.createSessions(t, sessions, users...)
	ctx := context.Background()
	legacy := sessions / 3 // the first third went through the unsharded queue
	for j := range perSession {
		for i := legacy; i < sessions; i++ {
			req := chat.SendRequest{SessionID: ids[i], Content: fmt.Sprintf("s%d m%d", i, j)}
			if err := first.m.Commands().Submit(ctx, "alice", req); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishLegacy(t, s, func(yield func(chat.SendRequest)) {
		for j := range perSession {
			for i := range legacy {
				yield(chat.SendRequest{SessionID: ids[i], Content: fmt.Sprintf("s%d m%d", i, j)})
			}
		}
	})
	first.stop(t)

	s.commands.Shards = 2
	sender := &lazySender{}
	next := startInstance(t, s, "new", withSender(sender))
	sender.s.Store(newService(t, next))
	waitStoredCount(t, next, ids, sessions*perSession, 60*time.Second)
	assertStoredInOrder(t, next, ids, perSession)

	// The queues of the old sharding are gone once drained.
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range []string{s.commands.Queue, shardQueue(s.commands.Queue, 2), shardQueue(s.commands.Queue, 3)} {
		for {
			if _, ok := next.amqpCommands(t).inspect(ctx, name); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("drained queue %s still exists", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// publishLegacy queues commands as versions before sharding did: one
// durable queue named commands.queue, single active consumer, persistent
// messages with a watermill UUID.
func publishLegacy(t *testing.T, s setup, reqs func(yield func(chat.SendRequest))) {
	t.Helper()
	conn, err := amqp.Dial(s.relay.AMQP.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(s.commands.Queue, true, false, false, false, amqp.Table{"x-single-active-consumer": true}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	var pubErr error
	reqs(func(req chat.SendRequest) {
		if pubErr != nil {
			return
		}
		msg := message.NewMessage(watermill.NewUUID(), []byte(`{"sessionId":"`+req.SessionID+`","content":`+strconv.Quote(req.Content)+`}`))
		msg.Metadata.Set(metaUserID, "alice")
		out, err := marshaler.Marshal(msg)
		if err != nil {
			pubErr = err
			return
		}
		dc, err := ch.PublishWithDeferredConfirm("", s.commands.Queue, false, false, out)
		if err != nil {
			pubErr = err
			return
		}
		if !dc.Wait() {
			pubErr = errors.New("nack")
		}
	})
	if pubErr != nil {
		t.Fatal(pubErr)
	}
}

// TestShardOf: a session's commands always go to the same shard, and
// sessions spread over all shards.
func TestShardOf(t *testing.T) {
	counts := make([]int, 8)
	for i := range 8000 {
		id := fmt.Sprintf("0190f0c2-%04x-7000-8000-%012x", i, i*7919)
		sh := shardOf(id, 8)
		if sh != shardOf(id, 8) {
			t.Fatal("shardOf is not stable")
		}
		counts[sh]++
	}
	for i, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("shard %d got %d of 8000 sessions, want about 1000: %v", i, c, counts)
		}
	}
	if !strings.HasSuffix(shardQueue("chat.send.queue", 3), ".3") {
		t.Errorf("shard queue name %q", shardQueue("chat.send.queue", 3))
	}
}

// TestCommitWakesForwarder: with the outbox poll set to 2 s, an event still
// reaches the hub within a few milliseconds of its commit: the commit
// wakes the forwarder (in process; on PostgreSQL also through a
// notification to the instance holding the forwarder lock, here not the
// one that wrote). A poll would make the median wait a second.
func TestCommitWakesForwarder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		storage func(testing.TB) config.Storage
		relay   string
	}{
		{"sqlite_memory", storetest.NewSQLite, config.RelayMemory},
		{"postgres_amqp", storetest.NewPostgres, config.RelayAMQP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.storage(t), tc.relay)
			s.outbox.PollInterval = 2 * time.Second
			leader := startInstance(t, s, "leader")
			writer := leader
			if tc.relay == config.RelayAMQP {
				// The first instance leads the forwarder once it has read;
				// the second only writes.
				time.Sleep(100 * time.Millisecond)
				writer = startInstance(t, s, "writer")
			}
			sessions := writer.createSessions(t, 1, users...)
			leader.hub.waitFor(t, 10*time.Second, "the session event", func(evs []chat.Event) bool { return len(evs) > 0 })
			const n = 21
			lat := make([]time.Duration, 0, n)
			for i := range n {
				before := len(messagesBySession(leader.hub.snapshot())[sessions[0]])
				if _, err := writer.send(context.Background(), sessions[0], "alice", fmt.Sprint(i), users); err != nil {
					t.Fatal(err)
				}
				committed := time.Now()
				leader.hub.waitFor(t, 10*time.Second, "message "+strconv.Itoa(i), func(evs []chat.Event) bool {
					return len(messagesBySession(evs)[sessions[0]]) > before
				})
				lat = append(lat, time.Since(committed))
				time.Sleep(20 * time.Millisecond) // low load: one at a time
			}
			slices.Sort(lat)
			t.Logf("commit → hub: p50 %s, max %s", lat[n/2], lat[n-1])
			if lat[n/2] > 200*time.Millisecond {
				t.Errorf("median commit → hub %s: the forwarder waited for its poll, not a wake-up", lat[n/2])
			}
		})
	}
}

// TestQuorumShards: with commands.queue_type quorum the shards are quorum
// queues (what a replicated RabbitMQ cluster needs) and work the same;
// starting again with classic is refused, naming the queue, since a queue's
// type cannot change in place.
func TestQuorumShards(t *testing.T) {
	s := newSetup(t, storetest.NewPostgres(t), config.RelayAMQP)
	s.commands.Shards, s.commands.QueueType = 2, "quorum"
	sender := &lazySender{}
	a := startInstance(t, s, "a", withSender(sender))
	sender.s.Store(newService(t, a))
	ids := a.createSessions(t, 4, users...)
	for j := range 10 {
		for i, id := range ids {
			if err := a.m.Commands().Submit(context.Background(), "alice", chat.SendRequest{SessionID: id, Content: fmt.Sprintf("s%d m%d", i, j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitStoredCount(t, a, ids, 40, 60*time.Second)
	assertStoredInOrder(t, a, ids, 10)

	conn, err := amqp.Dial(s.relay.AMQP.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive(shardQueue(s.commands.Queue, 0), true, false, false, false, nil); err != nil {
		t.Fatalf("shard 0 missing: %v", err)
	}
	classic := s
	classic.commands.QueueType = "classic"
	m, err := New(Params{DB: a.db.SQL, Storage: classic.storage, Relay: classic.relay, Outbox: classic.outbox, Commands: classic.commands, Instance: "classic-" + testName(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.Start(ctx, newRecordingHub(), noSender{}); err == nil {
		_ = m.Stop(ctx)
		t.Fatal("started with classic shards where quorum ones exist")
	} else if !strings.Contains(err.Error(), shardQueue(s.commands.Queue, 0)) {
		t.Errorf("start error %q does not name the queue", err)
	}
}
