package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/chat-service/chat/config"
)

// The forwarder reads the outbox in batches, in watermill-sql's table and
// offsets format (the publisher writes it, the janitor prunes it), and
// acknowledges a batch once, after the relay has confirmed it, instead of
// handing rows one at a time to a router handler that waits for each
// confirmation in turn. The PostgreSQL reader is in outboxpg.go.

// errBusy: another instance is forwarding the group's rows right now.
var errBusy = errors.New("another instance is forwarding the outbox")

// readBatch is rows of the outbox for the forwarder to publish, in
// order. Until it is finished, later reads skip its rows.
type readBatch struct {
	msgs []*message.Message
	// finish records msgs[:n] (0 ≤ n ≤ len) as forwarded and gives the rest
	// back, to be read again. Batches are finished in the order they were
	// read, and when one gives rows back, every later one gives all back.
	finish func(ctx context.Context, n int) error
}

// batchReader reads a topic for one consumer group.
type batchReader interface {
	// init creates the group's offsets row if it is missing.
	init(ctx context.Context) error
	// next returns the next rows to forward, nil when there are none now, or
	// errBusy.
	next(ctx context.Context) (*readBatch, error)
	// close releases what the reader holds.
	close()
}

// batchReader returns the reader of topic for group, batch rows at a time.
func (b *sqlBackend) batchReader(topic, group string, batch int) batchReader {
	if b.driver == config.DriverPostgres {
		return newPGOutboxReader(b.db, b.offsets, topic, group, batch)
	}
	offsets := b.offsets.(SQLiteOffsets)
	return &sqliteOutboxReader{
		db: b.db, schema: b.schema, offsets: offsets, topic: topic, group: group,
		sel: `SELECT "offset", uuid, payload, metadata FROM ` + quoteIdent(topic) +
			` WHERE "offset" > ? ORDER BY "offset" LIMIT ` + strconv.Itoa(batch),
	}
}

// sqliteOutboxReader reads in offset order, which is commit order in
// SQLite (one writer at a time), from a cursor kept in memory ahead of the
// group's offset: the offset moves when a batch is finished, in a short
// write of its own (SQLite has one writer, and every sender needs it). Like
// ackingSubscriber, it assumes one forwarder per SQLite file.
type sqliteOutboxReader struct {
	db      *sql.DB
	schema  wmsql.SchemaAdapter
	offsets SQLiteOffsets
	topic   string
	group   string
	sel     string // rows after $1, in order

	acked  int64 // the group's offset
	cursor int64 // the last offset read
}

func (r *sqliteOutboxReader) init(ctx context.Context) error {
	for _, q := range r.offsets.BeforeSubscribingQueries(r.topic, r.group) {
		if _, err := r.db.ExecContext(ctx, q.Query, q.Args...); err != nil {
			return fmt.Errorf("create offsets of %s for group %s: %w", r.topic, r.group, err)
		}
	}
	q := r.offsets.NextOffsetQuery(r.topic, r.group)
	if err := r.db.QueryRowContext(ctx, q.Query, q.Args...).Scan(&r.acked); err != nil {
		return fmt.Errorf("read offset of %s for group %s: %w", r.topic, r.group, err)
	}
	r.cursor = r.acked
	return nil
}

func (r *sqliteOutboxReader) close() {}

func (r *sqliteOutboxReader) next(ctx context.Context) (*readBatch, error) {
	rows, err := r.db.QueryContext(ctx, r.sel, r.cursor)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.topic, err)
	}
	defer rows.Close()
	var (
		msgs    []*message.Message
		offsets []int64
	)
	for rows.Next() {
		row, err := r.schema.UnmarshalMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.topic, err)
		}
		delete(row.Msg.Metadata, metaOffset)
		msgs, offsets = append(msgs, row.Msg), append(offsets, row.Offset)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.topic, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	r.cursor = offsets[len(offsets)-1]
	return &readBatch{msgs: msgs, finish: func(ctx context.Context, n int) error {
		if n > 0 {
			q := r.offsets.AckQuery(r.topic, r.group, offsets[n-1])
			if _, err := r.db.ExecContext(ctx, q.Query, q.Args...); err != nil {
				r.cursor = r.acked // all read again
				return fmt.Errorf("acknowledge %d rows of %s up to offset %d: %w", n, r.topic, offsets[n-1], err)
			}
			r.acked = offsets[n-1]
		}
		if n < len(msgs) {
			r.cursor = r.acked // read again from the first row not forwarded
		}
		return nil
	}}, nil
}
