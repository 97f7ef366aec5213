package messaging

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// pgOutboxReader reads watermill-sql's PostgreSQL outbox table and writes
// its offsets row, in their format: the group's offset is a (transaction_id,
// offset) position, and every row at or before it has been forwarded.
//
// watermill-sql's subscriber reads only rows below the oldest running
// transaction (pg_snapshot_xmin), so that a transaction that took its id
// early and commits late never has its rows skipped. That is right for the
// offset, but it makes every event wait for every older transaction in the
// cluster to end, whatever it is doing: under load, sends that spend tens of
// milliseconds between their first write and their commit held most events
// back by as much (the p99 from commit to hub was 40-60 ms, almost all of
// it that wait). This reader forwards every committed row as soon as it is
// visible, and keeps the offset where watermill-sql would: it moves only
// over rows below the oldest running transaction, all forwarded. The rows
// forwarded beyond it are remembered (sent) and left out of later reads;
// another instance taking over would forward them again, which is the
// at-least-once the relay promises.
//
// One instance of the group reads at a time: the one holding a session
// advisory lock (tried, never waited for, by the others at every idle
// poll). The leader keeps it, and the pool connection holding it, between
// rounds, so that the others do not forward again what it remembers; a
// leader whose process or connection dies loses the lock with its session.
// With a pool of fewer than pinMinConns connections it gives both back
// after every round instead: a pinned connection could leave the command
// queue's consumer, which holds one while its handler needs another, none.
//
// Order. Rows are published in offset order within a read. A session's
// messages take their offset after the session row's lock (the seq bump),
// so their offsets are in seq order, and a message's transaction can only
// commit after every earlier message of its session did, so a read that
// sees a message sees the earlier ones too. (watermill-sql's order,
// transaction id first, follows seq only if transaction ids do, and a
// transaction takes its id just before it waits for the row lock.)
type pgOutboxReader struct {
	db      *sql.DB
	offsets wmsql.OffsetsAdapter // for BeforeSubscribingQueries
	topic   string
	group   string
	batch   int
	query   string // $1 group, $2 offsets to skip, $3 read rows above the oldest running transaction
	ack     string // forward-only offset write: $1 offset, $2 transaction id, $3 group
	lockKey string // advisory lock key, hashed by hashtext

	pin  bool      // keep the lock and conn between reads
	conn *sql.Conn // while this instance leads: the session holding the lock

	// What the reader knows, which the offset may move over (see settle).
	sent     []rowKey // rows after the group's offset that were forwarded
	inflight []rowKey // rows read, their batch not finished
	w        rowKey   // the group's offset at the last read
	horizon  int64    // the oldest running transaction at the last read
	bound    *rowKey  // the last read stopped at its limit here; nil: it did not
	stale    bool     // rows were given back since the last read
}

// pinMinConns is the smallest pool the leader keeps a connection of.
const pinMinConns = 4

// rowKey is a row's position in watermill-sql's order.
type rowKey struct{ tx, off int64 }

func (k rowKey) compare(o rowKey) int {
	if c := cmp.Compare(k.tx, o.tx); c != 0 {
		return c
	}
	return cmp.Compare(k.off, o.off)
}

// sentMax bounds, in batches, how many rows the leader forwards past the
// offset: a transaction that stays open for long (a migration, a stuck
// client) makes it fall back to watermill-sql's rule instead of passing an
// ever longer list to every read.
const sentMax = 10

func newPGOutboxReader(db *sql.DB, offsets wmsql.OffsetsAdapter, topic, group string, batch int) *pgOutboxReader {
	t, o := quoteIdent(topic), quoteIdent(topic+"_offsets") // as newSQLBackend names them
	limit := strconv.Itoa(batch)
	return &pgOutboxReader{
		db: db, offsets: offsets, topic: topic, group: group, batch: batch,
		pin: poolAtLeast(db, pinMinConns),
		// "settled": rows after the offset, below the oldest running
		// transaction, in key order (watermill-sql's SELECT, minus its row
		// lock); "fresh": committed rows of transactions at or above it, when
		// settled did not fill the batch. Both are primary-key index ranges:
		// the bounds are scalar subqueries, which the planner turns into index
		// conditions. The first columns carry the offset and the horizon,
		// also when no row comes back.
		query: `WITH s AS MATERIALIZED (
				SELECT last_processed_transaction_id AS w_tx, offset_acked AS w_off,
					pg_snapshot_xmin(pg_current_snapshot()) AS horizon
				FROM ` + o + ` WHERE consumer_group = $1
			), settled AS MATERIALIZED (
				SELECT "offset", transaction_id, uuid, payload, metadata, 0 AS fresh FROM ` + t + `
				WHERE (transaction_id, "offset") > ((SELECT w_tx FROM s), (SELECT w_off FROM s))
				  AND transaction_id < (SELECT horizon FROM s)
				  AND "offset" <> ALL($2::bigint[])
				ORDER BY transaction_id, "offset" LIMIT ` + limit + `
			), fresh AS (
				SELECT "offset", transaction_id, uuid, payload, metadata, 1 AS fresh FROM ` + t + `
				WHERE $3 AND (SELECT count(*) FROM settled) < ` + limit + `
				  AND transaction_id >= (SELECT horizon FROM s)
				  AND "offset" <> ALL($2::bigint[])
				ORDER BY transaction_id, "offset" LIMIT ` + limit + `
			)
			SELECT s.w_tx, s.w_off, s.horizon, r."offset", r.transaction_id, r.uuid, r.payload, r.metadata, r.fresh
			FROM s LEFT JOIN LATERAL (SELECT * FROM settled UNION ALL SELECT * FROM fresh) r ON true`,
		// watermill-sql's ack, except that it never moves the offset back.
		ack: `INSERT INTO ` + o + ` AS f (offset_acked, last_processed_transaction_id, consumer_group) VALUES ($1, $2, $3)
			ON CONFLICT (consumer_group) DO UPDATE SET
				offset_acked = excluded.offset_acked,
				last_processed_transaction_id = excluded.last_processed_transaction_id
			WHERE (f.last_processed_transaction_id, f.offset_acked) < (excluded.last_processed_transaction_id, excluded.offset_acked)`,
		lockKey: t + "/" + group,
	}
}

func (r *pgOutboxReader) init(ctx context.Context) error {
	for _, q := range r.offsets.BeforeSubscribingQueries(r.topic, r.group) {
		if _, err := r.db.ExecContext(ctx, q.Query, q.Args...); err != nil {
			return fmt.Errorf("create offsets of %s for group %s: %w", r.topic, r.group, err)
		}
	}
	return nil
}

func (r *pgOutboxReader) next(ctx context.Context) (*readBatch, error) {
	if r.conn == nil {
		if err := r.lead(ctx); err != nil {
			return nil, err
		}
	}
	b, err := r.read(ctx)
	switch {
	case err != nil:
		r.resign(true) // what it remembers may no longer hold
	case !r.pin:
		r.resign(false)
	}
	return b, err
}

// lead tries to become the group's reader.
func (r *pgOutboxReader) lead(ctx context.Context) error {
	c, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("lead %s for group %s: %w", r.topic, r.group, err)
	}
	var ok bool
	if err := c.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, r.lockKey).Scan(&ok); err != nil {
		discard(c)
		return fmt.Errorf("lead %s for group %s: %w", r.topic, r.group, err)
	}
	if !ok {
		_ = c.Close() // back to the pool; it holds nothing
		return errBusy
	}
	r.conn = c
	return nil
}

// resign unlocks and gives the connection back, or drops it (which ends
// its session and so its lock) when that fails; forget drops what the
// reader remembers it forwarded (whoever reads next forwards it again).
// Rows in flight stay known: their batches are still to be finished.
func (r *pgOutboxReader) resign(forget bool) {
	if forget {
		r.sent = nil
	}
	if r.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.conn.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, r.lockKey); err != nil {
		discard(r.conn)
	} else {
		_ = r.conn.Close() // back to the pool
	}
	r.conn = nil
}

func (r *pgOutboxReader) close() { r.resign(true) }

// discard closes c's session instead of returning it to the pool.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn }) // marks it bad: closed on release
	_ = c.Close()
}

// outboxRow is a row read by the leader.
type outboxRow struct {
	key   rowKey
	fresh bool // at or above the horizon of its read
	msg   *message.Message
}

func (r *pgOutboxReader) read(ctx context.Context) (*readBatch, error) {
	skip := make([]int64, 0, len(r.sent)+len(r.inflight))
	for _, k := range r.sent {
		skip = append(skip, k.off)
	}
	for _, k := range r.inflight {
		skip = append(skip, k.off)
	}
	rows, err := r.conn.QueryContext(ctx, r.query, r.group, skip, len(skip) < sentMax*r.batch)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.topic, err)
	}
	defer rows.Close()
	var (
		w, horizon rowKey // horizon.off unused
		read       []outboxRow
		header     bool
	)
	for rows.Next() {
		var (
			off, tx        sql.NullInt64
			uuid           sql.NullString
			payload, mdata []byte
			fresh          sql.NullInt64
		)
		if err := rows.Scan(&w.tx, &w.off, &horizon.tx, &off, &tx, &uuid, &payload, &mdata, &fresh); err != nil {
			return nil, fmt.Errorf("read %s: %w", r.topic, err)
		}
		header = true
		if !off.Valid {
			continue // no rows: the header alone
		}
		msg := message.NewMessage(uuid.String, payload)
		if len(mdata) > 0 {
			if err := json.Unmarshal(mdata, &msg.Metadata); err != nil {
				return nil, fmt.Errorf("read %s: metadata of %s: %w", r.topic, uuid.String, err)
			}
		}
		read = append(read, outboxRow{key: rowKey{tx.Int64, off.Int64}, fresh: fresh.Int64 == 1, msg: msg})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.topic, err)
	}
	if !header {
		return nil, fmt.Errorf("read %s: no offsets row for group %s", r.topic, r.group)
	}
	// A complete picture again (see settle).
	r.w, r.horizon, r.bound, r.stale = w, horizon.tx, nil, false
	// What the offset passed (moved by the last settle, or by an instance of
	// an older version) needs no remembering.
	r.sent = slices.DeleteFunc(r.sent, func(k rowKey) bool { return k.compare(w) <= 0 })
	// If the settled rows fill the batch there may be more of them after
	// the last.
	var (
		settled int
		last    rowKey
	)
	for _, row := range read {
		if !row.fresh {
			settled++
			if last.compare(row.key) < 0 {
				last = row.key
			}
		}
	}
	if settled == r.batch {
		r.bound = &last
	}
	if len(read) == 0 {
		return nil, r.settle(ctx)
	}
	slices.SortFunc(read, func(a, b outboxRow) int { return cmp.Compare(a.key.off, b.key.off) })
	b := &readBatch{msgs: make([]*message.Message, len(read))}
	keys := make([]rowKey, len(read))
	for i, row := range read {
		b.msgs[i], keys[i] = row.msg, row.key
	}
	r.inflight = append(r.inflight, keys...)
	b.finish = func(ctx context.Context, n int) error {
		r.inflight = slices.DeleteFunc(r.inflight, func(k rowKey) bool { return slices.Contains(keys, k) })
		if n < len(keys) {
			r.stale = true
		}
		if n == 0 {
			return nil
		}
		r.sent = append(r.sent, keys[:n]...)
		slices.SortFunc(r.sent, rowKey.compare)
		if err := r.settle(ctx); err != nil {
			r.resign(true)
			return err
		}
		return nil
	}
	return b, nil
}

// settle moves the group's offset over the rows it knows were forwarded,
// and forgets them. From the last read: every row after the offset w and
// below the horizon that existed then was read by it (and is in flight, or
// was forwarded since, or given back, which makes the picture stale until
// the next read), or was left out as sent or in flight, or lies after
// bound. So the offset may move to the last sent row before the first row
// that is in flight, at or above the horizon, or after bound. The write
// needs no lock: it only moves forward, over rows this reader forwarded.
func (r *pgOutboxReader) settle(ctx context.Context) error {
	if r.stale {
		return nil
	}
	stop := rowKey{tx: r.horizon}
	for _, k := range r.inflight {
		if k.compare(stop) < 0 {
			stop = k
		}
	}
	to := r.w
	for _, k := range r.sent {
		if k.compare(stop) >= 0 || r.bound != nil && k.compare(*r.bound) > 0 {
			break
		}
		to = k
	}
	if to == r.w {
		return nil
	}
	var db interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	} = r.db
	if r.conn != nil {
		db = r.conn
	}
	if _, err := db.ExecContext(ctx, r.ack, to.off, to.tx, r.group); err != nil {
		return fmt.Errorf("acknowledge %s up to offset %d: %w", r.topic, to.off, err)
	}
	r.w = to
	r.sent = slices.DeleteFunc(r.sent, func(k rowKey) bool { return k.compare(to) <= 0 })
	return nil
}
