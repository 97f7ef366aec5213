package messaging

import (
	"database/sql"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/chat-service/chat/config"
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
	b := &sqlBackend{db: db, driver: driver, batch: batchSize, log: log}
	switch driver {
	case config.DriverSQLite:
		b.schema = SQLiteSchema{SubscribeBatchSize: batchSize}
		b.offsets = SQLiteOffsets{}
	case config.DriverPostgres:
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
