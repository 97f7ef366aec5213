package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Database drivers, as storage.driver spells them.
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// sqlBackend builds watermill-sql publishers and subscribers for one
// database, with the adapters of its dialect and the chat_* table names.
type sqlBackend struct {
	db      *sql.DB
	driver  string
	schema  wmsql.SchemaAdapter
	offsets wmsql.OffsetsAdapter
	batch   int // rows per read (outbox.batch_size)
	log     watermill.LoggerAdapter
}

// newSQLBackend returns the backend of driver ("sqlite" or "postgres"). A
// topic's messages table is named like the topic, its offsets table
// topic + "_offsets": OutboxTopic is chat_message_outbox.
func newSQLBackend(db *sql.DB, driver string, batchSize int, log watermill.LoggerAdapter) (*sqlBackend, error) {
	if batchSize <= 0 {
		batchSize = 100 // watermill-sql's default
	}
	b := &sqlBackend{db: db, driver: driver, batch: batchSize, log: log}
	switch driver {
	case driverSQLite:
		b.schema = SQLiteSchema{SubscribeBatchSize: batchSize}
		b.offsets = SQLiteOffsets{}
	case driverPostgres:
		b.schema = wmsql.DefaultPostgreSQLSchema{
			GenerateMessagesTableName: quoteIdent,
			GeneratePayloadType:       func(string) string { return "BYTEA" },
			SubscribeBatchSize:        batchSize,
		}
		b.offsets = wmsql.DefaultPostgreSQLOffsetsAdapter{
			GenerateMessagesOffsetsTableName: func(topic string) string { return quoteIdent(topic + "_offsets") },
		}
	default:
		return nil, fmt.Errorf("messaging: unknown storage driver %q (want sqlite or postgres)", driver)
	}
	return b, nil
}

// publisher writes messages through db, a *sql.DB or the *sql.Tx of the
// transaction the messages belong to.
func (b *sqlBackend) publisher(db wmsql.ContextExecutor) (*wmsql.Publisher, error) {
	return wmsql.NewPublisher(db, wmsql.PublisherConfig{SchemaAdapter: b.schema}, b.log)
}

// subscriberConfig tunes a subscriber of group.
type subscriberConfig struct {
	group       string
	poll        time.Duration
	batch       int           // rows per poll; 0: the backend's (outbox.batch_size)
	ackDeadline time.Duration // 0: watermill-sql's 30 s
	initSchema  bool          // create tables on subscribe (tests; production uses migrations)
}

// subscriber returns a watermill-sql subscriber of the group. PostgreSQL
// acks in the polling transaction, watermill-sql's own way: its row lock on
// the group's offsets keeps concurrent instances apart and blocks no other
// writer. SQLite acks after each message in a transaction of its own
// (ackingSubscriber): a poll that held SQLite's single write lock while a
// handler ran would stall every sender, and deadlock a handler that writes.
func (b *sqlBackend) subscriber(c subscriberConfig) (message.Subscriber, error) {
	cfg := wmsql.SubscriberConfig{
		ConsumerGroup:    c.group,
		PollInterval:     c.poll,
		ResendInterval:   100 * time.Millisecond,
		RetryInterval:    time.Second,
		SchemaAdapter:    b.schemaWithBatch(c.batch),
		OffsetsAdapter:   b.offsets,
		InitializeSchema: c.initSchema,
	}
	cfg.BackoffManager = quietBackoff{wmsql.NewDefaultBackoffManager(c.poll, cfg.RetryInterval)}
	if c.ackDeadline > 0 {
		d := c.ackDeadline
		cfg.AckDeadline = &d
	}
	if b.driver == driverPostgres {
		sub, err := wmsql.NewSubscriber(b.db, cfg, b.log)
		if err != nil {
			return nil, err
		}
		return &closingSubscriber{sub: sub}, nil
	}
	return newAckingSubscriber(b.db, cfg, b.offsets.(SQLiteOffsets), b.log)
}

// quietBackoff is watermill-sql's backoff without the error log of a poll
// that a canceled context (shutdown) ended.
type quietBackoff struct{ wmsql.BackoffManager }

func (b quietBackoff) HandleError(log watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if errors.Is(err, context.Canceled) {
		return time.Second // the subscriber is stopping; it will not poll again
	}
	return b.BackoffManager.HandleError(log, noMsg, err)
}

// schemaWithBatch is the schema adapter reading n rows per poll (0: as
// configured).
func (b *sqlBackend) schemaWithBatch(n int) wmsql.SchemaAdapter {
	if n <= 0 {
		return b.schema
	}
	switch s := b.schema.(type) {
	case wmsql.DefaultPostgreSQLSchema:
		s.SubscribeBatchSize = n
		return s
	case SQLiteSchema:
		s.SubscribeBatchSize = n
		return s
	}
	return b.schema
}

// closingSubscriber is a watermill-sql subscriber whose Close returns after
// every channel it handed out is closed: watermill-sql's returns when its
// polling stops, and closes the channel a moment later.
type closingSubscriber struct {
	sub *wmsql.Subscriber
	wg  sync.WaitGroup
}

// Subscribe implements message.Subscriber.
func (s *closingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for msg := range in {
			select {
			case out <- msg:
			case <-msg.Context().Done(): // the subscriber is closing; unacked, it stays unread
			}
		}
	}()
	return out, nil
}

// SubscribeInitialize implements message.SubscribeInitializer.
func (s *closingSubscriber) SubscribeInitialize(topic string) error {
	return s.sub.SubscribeInitialize(topic)
}

// Close implements message.Subscriber.
func (s *closingSubscriber) Close() error {
	err := s.sub.Close()
	s.wg.Wait()
	return err
}
