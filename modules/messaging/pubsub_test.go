package messaging

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/chat-service/chat/modules/store/storetest"
)

// watermill's own pub/sub conformance suite, on the SQL adapters the
// outbox publisher and the SQL command queue use (the forwarder reads the
// outbox with a reader of its own: forwarder_test.go). ForceShort keeps it to about a
// hundred messages per test. Topics are the suite's ("topic-<uuid>"); their
// tables are created on subscribe, as production's come from migrations.

func TestPubSubSQLite(t *testing.T) {
	cfg := storetest.NewSQLite(t)
	// Each subscription holds a connection for its poll while a message is
	// out and needs another for the offset: the suite runs dozens at once.
	cfg.MaxOpenConns = 0
	db := openStore(t, cfg)
	b, err := newSQLBackend(db.SQL, driverSQLite, 100, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	// Offsets are written after each message, outside the poll
	// (ackingSubscriber): concurrent subscriptions of one group may both see
	// a message, so delivery is at least once and ordered for a single
	// subscriber (production runs one per SQLite file).
	runPubSubSuite(t, b, tests.Features{
		ConsumerGroups: true, ExactlyOnceDelivery: false, GuaranteedOrder: true,
		GuaranteedOrderWithSingleSubscriber: true, Persistent: true, ForceShort: true,
	})
}

func TestPubSubPostgres(t *testing.T) {
	db := openStore(t, storetest.NewPostgres(t))
	b, err := newSQLBackend(db.SQL, driverPostgres, 100, watermill.NopLogger{})
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
		sub, err := b.subscriber(subscriberConfig{group: group, poll: 10 * time.Millisecond, initSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "test") },
		withGroup)
}
