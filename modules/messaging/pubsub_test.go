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

// watermill's own pub/sub conformance suite, on the PostgreSQL adapters the
// outbox publisher and the SQL command queue write with, and watermill-sql's
// subscriber: the tables stay readable by any watermill consumer. (Our own
// consumers read them in batches: forwarder_test.go, commands_test.go.) ForceShort keeps it to about a
// hundred messages per test. Topics are the suite's ("topic-<uuid>"); their
// tables are created on subscribe, as production's come from migrations.

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
		sub, err := wmsql.NewSubscriber(b.db, wmsql.SubscriberConfig{
			ConsumerGroup: group, PollInterval: 10 * time.Millisecond, ResendInterval: 100 * time.Millisecond,
			SchemaAdapter: b.schema, OffsetsAdapter: b.offsets, InitializeSchema: true,
		}, b.log)
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "test") },
		withGroup)
}
