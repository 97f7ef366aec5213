package messaging

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest/tcpproxy"
	"github.com/chat-service/chat/modules/store"
)

// setup is what the instances of one test share: a database, a relay
// driver and, for RabbitMQ, an exchange and command queue of the test's own
// (deleted at cleanup).
type setup struct {
	storage  config.Storage
	relay    config.Relay
	commands config.Commands
	outbox   config.Outbox
}

func newSetup(t testing.TB, storage config.Storage, relayDriver string) setup {
	t.Helper()
	name := testName(t)
	s := setup{
		storage:  storage,
		relay:    config.Relay{Driver: relayDriver},
		commands: config.Commands{Queue: "chat.send." + name, PollInterval: 20 * time.Millisecond, Shards: 4, QueueType: "classic", Prefetch: 64},
		outbox:   config.Outbox{PollInterval: 20 * time.Millisecond, BatchSize: 100, Retention: time.Hour},
	}
	if relayDriver == config.RelayAMQP {
		s.relay.AMQP = config.AMQP{URL: amqpURL(t), Exchange: "chat.events." + name}
		t.Cleanup(func() {
			queues := []string{s.commands.Queue}
			for i := range config.MaxCommandShards {
				queues = append(queues, shardQueue(s.commands.Queue, i))
			}
			deleteAMQP(t, s.relay.AMQP.URL, s.relay.AMQP.Exchange, queues...)
		})
	}
	return s
}

// deleteAMQP removes a test's exchange and queue.
func deleteAMQP(t testing.TB, rawURL, exchange string, queues ...string) {
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Logf("cleanup RabbitMQ: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range queues {
		_, _ = ch.QueueDelete(q, false, false, false) // gone already is fine
	}
	if exchange != "" {
		_ = ch.ExchangeDelete(exchange, false, false)
	}
}

// instance is one chat-service instance's messaging, its own database pool,
// store and recording hub.
type instance struct {
	name  string
	db    *store.DB
	store *store.Store
	m     *Messaging
	hub   *recordingHub
	reg   *prometheus.Registry
}

type instanceOption func(*instanceConfig)

type instanceConfig struct {
	sender  Sender
	amqpURL string // overrides the setup's (a proxy)
	appName string // PostgreSQL application_name of the pool
}

func withSender(s Sender) instanceOption          { return func(c *instanceConfig) { c.sender = s } }
func withAMQPURL(u string) instanceOption         { return func(c *instanceConfig) { c.amqpURL = u } }
func withApplicationName(n string) instanceOption { return func(c *instanceConfig) { c.appName = n } }

func startInstance(t testing.TB, s setup, name string, opts ...instanceOption) *instance {
	t.Helper()
	c := instanceConfig{sender: noSender{}}
	for _, o := range opts {
		o(&c)
	}
	storage := s.storage
	if c.appName != "" && storage.Driver == config.DriverPostgres {
		u, err := url.Parse(storage.DSN)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", c.appName)
		u.RawQuery = q.Encode()
		storage.DSN = u.String()
	}
	db := openStore(t, storage)
	relayCfg := s.relay
	if c.amqpURL != "" {
		relayCfg.AMQP.URL = c.amqpURL
	}
	reg := prometheus.NewRegistry()
	m, err := New(Params{
		DB: db.SQL, Storage: storage, Relay: relayCfg, Outbox: s.outbox, Commands: s.commands,
		Log: testLogger(t).With("instance", name), Registerer: reg, Instance: name + "-" + testName(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{name: name, db: db, store: store.New(db), m: m, hub: newRecordingHub(), reg: reg}
	in.store.OnCommit(m.Events().Committed)
	if s.relay.Driver == config.RelayAMQP {
		// A stopped instance deletes its queue; a "crashed" one leaves it to
		// x-expires, too slow for a test.
		t.Cleanup(func() { deleteAMQP(t, s.relay.AMQP.URL, "", relayQueuePrefix+m.Instance()) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.Start(ctx, in.hub, c.sender); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.m.Stop(ctx); err != nil {
		t.Errorf("stop %s: %v", in.name, err)
	}
}

// createSessions makes n group sessions of the users, through the outbox.
func (in *instance) createSessions(t testing.TB, n int, users ...string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ns := chat.NewSession{
			ID: uuid.Must(uuid.NewV7()).String(), Type: chat.TypeGroup, CreatorID: users[0],
			Participants: users, CreatedAt: chat.Now(),
		}
		sess, _, err := in.store.CreateSession(context.Background(), ns, func(ctx context.Context, tx *sql.Tx, sess chat.Session) error {
			return in.m.Events().Stored(ctx, tx, chat.Event{Type: chat.EventSession, Session: &sess, Participants: users})
		})
		if err != nil {
			t.Fatalf("create session: %v", err)
		}
		ids[i] = sess.ID
	}
	return ids
}

// send stores a message as chat.Service does: the message and its event in
// one transaction.
func (in *instance) send(ctx context.Context, sessionID, sender, content string, participants []string) (chat.Message, error) {
	nm := chat.NewMessage{
		ID: uuid.Must(uuid.NewV7()).String(), SessionID: sessionID, SenderID: sender,
		Content: content, CreatedAt: chat.Now(),
	}
	msg, _, err := in.store.AppendMessage(ctx, nm, func(ctx context.Context, tx *sql.Tx, m chat.Message) error {
		return in.m.Events().Stored(ctx, tx, chat.Event{Type: chat.EventMessage, SessionID: m.SessionID, Message: &m, Participants: participants})
	})
	return msg, err
}

// sendAll sends perSession messages to every session, the sessions
// concurrently and each session's messages one after another, and fails the
// test on any error.
func (in *instance) sendAll(t testing.TB, sessions []string, perSession int, participants []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(sessions))
	for _, id := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSession {
				if _, err := in.send(context.Background(), id, participants[0], fmt.Sprintf("message %d", i), participants); err != nil {
					errs <- fmt.Errorf("send %d to %s: %w", i, id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// newAMQPProxy returns a cuttable proxy to the RabbitMQ of rawURL and the
// URL through it.
func newAMQPProxy(t testing.TB, rawURL string) (*tcpproxy.Proxy, string) {
	t.Helper()
	return tcpproxy.ForURL(t, rawURL, "5672")
}
