package messaging

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/store/storetest"
)

// watermill's own pub/sub conformance suite, on the PostgreSQL adapters the
// outbox publisher and the SQL command queue write with, and watermill-sql's
// subscriber: the tables stay readable by any watermill consumer. (Our own
// consumers read them in batches: forwarder_test.go, commands_test.go.) ForceShort keeps it to about a
// hundred messages per test. Topics are the suite's ("topic-<uuid>"); their
// tables are created on subscribe, as production's come from migrations.

func TestPubSubPostgres(t *testing.T) {
	db := openStore(t, storetest.NewPostgres(t))
	b, err := newSQLBackend(db.SQL, config.DriverPostgres, 100, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	runPubSubSuite(t, b, tests.Features{
		ConsumerGroups: true, ExactlyOnceDelivery: true, GuaranteedOrder: true,
		Persistent: true, ForceShort: true,
	})
}

func runPubSubSuite(t *testing.T, b *sqlBackend, features tests.Features) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := wmsql.NewPublisher(b.db, wmsql.PublisherConfig{SchemaAdapter: b.schema, AutoInitializeSchema: true}, b.log)
		if err != nil {
			t.Fatal(err)
		}
		wsub, err := wmsql.NewSubscriber(b.db, wmsql.SubscriberConfig{
			ConsumerGroup: group, PollInterval: 10 * time.Millisecond, ResendInterval: 100 * time.Millisecond,
			SchemaAdapter: b.schema, OffsetsAdapter: b.offsets, InitializeSchema: true,
		}, b.log)
		sub := &closingSubscriber{sub: wsub}
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "test") },
		withGroup)
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
