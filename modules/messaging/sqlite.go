package messaging

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// SQLite adapters for watermill-sql. A topic's messages live in a table named
// like the topic, its consumer groups' offsets in topic + "_offsets":
//
//	"offset"    INTEGER PRIMARY KEY AUTOINCREMENT  (never reused, even after pruning)
//	uuid        TEXT
//	created_at  INTEGER, unix milliseconds (the store's time format)
//	payload     BLOB
//	metadata    TEXT, JSON
//
// SQLite has one writer at a time and commits in order, so a row with a lower
// offset is always visible before one with a higher offset: the offset alone
// is a consistent read position (PostgreSQL needs transaction ids for that).

var (
	_ wmsql.SchemaAdapter  = SQLiteSchema{}
	_ wmsql.OffsetsAdapter = SQLiteOffsets{}
)

// SQLiteSchema is the watermill-sql SchemaAdapter for SQLite.
type SQLiteSchema struct {
	// GenerateMessagesTableName maps a topic to its quoted messages table;
	// the default is the topic itself, quoted.
	GenerateMessagesTableName func(topic string) string
	// SubscribeBatchSize is how many rows one poll reads (default 100).
	SubscribeBatchSize int
}

// MessagesTable is the quoted messages table of topic.
func (s SQLiteSchema) MessagesTable(topic string) string {
	if s.GenerateMessagesTableName != nil {
		return s.GenerateMessagesTableName(topic)
	}
	return quoteIdent(topic)
}

// SchemaInitializingQueries creates the messages table (tests; production
// tables come from migrations).
func (s SQLiteSchema) SchemaInitializingQueries(topic string) []wmsql.Query {
	return []wmsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + s.MessagesTable(topic) + ` (
		"offset" INTEGER PRIMARY KEY AUTOINCREMENT,
		uuid TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		payload BLOB,
		metadata TEXT
	)`}}
}

// InsertQuery inserts msgs in one statement, in order.
func (s SQLiteSchema) InsertQuery(topic string, msgs message.Messages) (wmsql.Query, error) {
	if len(msgs) == 0 {
		return wmsql.Query{}, fmt.Errorf("insert into %s: no messages", topic)
	}
	now := time.Now().UnixMilli()
	args := make([]any, 0, 4*len(msgs))
	for _, msg := range msgs {
		md, err := json.Marshal(msg.Metadata)
		if err != nil {
			return wmsql.Query{}, fmt.Errorf("encode metadata of message %s: %w", msg.UUID, err)
		}
		args = append(args, msg.UUID, now, []byte(msg.Payload), string(md))
	}
	q := `INSERT INTO ` + s.MessagesTable(topic) + ` (uuid, created_at, payload, metadata) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(msgs)), ",")
	return wmsql.Query{Query: q, Args: args}, nil
}

// SelectQuery reads the next rows after the group's acknowledged offset.
func (s SQLiteSchema) SelectQuery(topic, consumerGroup string, offsets wmsql.OffsetsAdapter) wmsql.Query {
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	batch := s.SubscribeBatchSize
	if batch <= 0 {
		batch = 100
	}
	q := `SELECT "offset", uuid, payload, metadata FROM ` + s.MessagesTable(topic) +
		` WHERE "offset" > COALESCE((` + next.Query + `), 0) ORDER BY "offset" LIMIT ` + strconv.Itoa(batch)
	return wmsql.Query{Query: q, Args: next.Args}
}

// UnmarshalMessage turns a row into a message. The row's offset is also put
// in the metadata (sql_offset) for the external-ack subscriber.
func (s SQLiteSchema) UnmarshalMessage(row wmsql.Scanner) (wmsql.Row, error) {
	var (
		r        wmsql.Row
		uuid     string
		metadata sql.NullString
	)
	if err := row.Scan(&r.Offset, &uuid, &r.Payload, &metadata); err != nil {
		return wmsql.Row{}, fmt.Errorf("scan message row: %w", err)
	}
	r.UUID = []byte(uuid)
	msg := message.NewMessage(uuid, r.Payload)
	if metadata.Valid && metadata.String != "" {
		r.Metadata = []byte(metadata.String)
		if err := json.Unmarshal(r.Metadata, &msg.Metadata); err != nil {
			return wmsql.Row{}, fmt.Errorf("decode metadata of message %s: %w", uuid, err)
		}
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	msg.Metadata.Set(metaOffset, strconv.FormatInt(r.Offset, 10))
	r.Msg = msg
	return r, nil
}

// SubscribeIsolationLevel: SQLite transactions are serializable anyway.
func (s SQLiteSchema) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelDefault }

// SQLiteOffsets is the watermill-sql OffsetsAdapter for SQLite: one row per
// consumer group holding the last acknowledged offset.
type SQLiteOffsets struct {
	// GenerateMessagesOffsetsTableName maps a topic to its quoted offsets
	// table; the default is topic + "_offsets", quoted.
	GenerateMessagesOffsetsTableName func(topic string) string
}

// MessagesOffsetsTable is the quoted offsets table of topic.
func (a SQLiteOffsets) MessagesOffsetsTable(topic string) string {
	if a.GenerateMessagesOffsetsTableName != nil {
		return a.GenerateMessagesOffsetsTableName(topic)
	}
	return quoteIdent(topic + "_offsets")
}

// SchemaInitializingQueries creates the offsets table.
func (a SQLiteOffsets) SchemaInitializingQueries(topic string) []wmsql.Query {
	return []wmsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + a.MessagesOffsetsTable(topic) + ` (
		consumer_group TEXT NOT NULL PRIMARY KEY,
		offset_acked INTEGER NOT NULL DEFAULT 0
	)`}}
}

// AckMessageQuery records row as the group's last processed message.
func (a SQLiteOffsets) AckMessageQuery(topic string, row wmsql.Row, consumerGroup string) wmsql.Query {
	return a.AckQuery(topic, consumerGroup, row.Offset)
}

// AckQuery moves the group's offset forward to offset (never backwards).
func (a SQLiteOffsets) AckQuery(topic, consumerGroup string, offset int64) wmsql.Query {
	return wmsql.Query{
		Query: `UPDATE ` + a.MessagesOffsetsTable(topic) + ` SET offset_acked = ? WHERE consumer_group = ? AND offset_acked < ?`,
		Args:  []any{offset, consumerGroup, offset},
	}
}

// ConsumedMessageQuery is not used.
func (a SQLiteOffsets) ConsumedMessageQuery(string, wmsql.Row, string, []byte) wmsql.Query {
	return wmsql.Query{}
}

// NextOffsetQuery returns the group's acknowledged offset.
func (a SQLiteOffsets) NextOffsetQuery(topic, consumerGroup string) wmsql.Query {
	return wmsql.Query{
		Query: `SELECT offset_acked FROM ` + a.MessagesOffsetsTable(topic) + ` WHERE consumer_group = ?`,
		Args:  []any{consumerGroup},
	}
}

// BeforeSubscribingQueries creates the group's offset row.
func (a SQLiteOffsets) BeforeSubscribingQueries(topic, consumerGroup string) []wmsql.Query {
	return []wmsql.Query{{
		Query: `INSERT INTO ` + a.MessagesOffsetsTable(topic) + ` (consumer_group, offset_acked) VALUES (?, 0) ON CONFLICT (consumer_group) DO NOTHING`,
		Args:  []any{consumerGroup},
	}}
}

// quoteIdent quotes a table name; topics are validated by watermill-sql
// ([A-Za-z0-9-$:._]), so they hold no quote.
func quoteIdent(name string) string { return `"` + name + `"` }
