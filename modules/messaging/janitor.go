package messaging

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/chat-service/chat/config"
)

// How often the janitor measures lag and prunes, and how many rows one
// DELETE removes (short transactions, so writers are not held up).
const (
	lagInterval    = 2 * time.Second
	pruneBatch     = 5000
	pruneMaxRounds = 200
)

// janitor keeps the SQL queues in shape: it measures the outbox lag (rows
// and age of the oldest unforwarded row) for the metrics, and deletes rows
// that their consumer group has acknowledged and that are older than
// outbox.retention. Every instance runs one; the statements are idempotent.
type janitor struct {
	db         *sql.DB
	driver     string
	retention  time.Duration
	pruneEvery time.Duration
	sqlQueue   bool // the command queue is SQL (else RabbitMQ)
	m          *metrics
	log        *slog.Logger
}

func (j *janitor) run(ctx context.Context) {
	lagTick := time.NewTicker(lagInterval)
	defer lagTick.Stop()
	pruneTick := time.NewTicker(j.pruneEvery)
	defer pruneTick.Stop()
	j.measure(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-lagTick.C:
			j.measure(ctx)
		case <-pruneTick.C:
			j.pruneAll(ctx, time.Now().Add(-j.retention))
		}
	}
}

func (j *janitor) measure(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, lagInterval)
	defer cancel()
	rows, age, err := j.lag(ctx, OutboxTopic, forwarderGroup)
	if err != nil {
		if ctx.Err() == nil {
			j.log.Debug("measure outbox lag", "err", err)
		}
		return
	}
	j.m.outboxLagRows.Set(float64(rows))
	j.m.outboxLagSeconds.Set(age.Seconds())
	if j.sqlQueue {
		if rows, _, err := j.lag(ctx, CommandTopic, commandGroup); err == nil {
			j.m.commandQueueDepth.Set(float64(rows))
		}
	}
}

// lag counts the rows of topic that group has not acknowledged and the age
// of the oldest of them.
func (j *janitor) lag(ctx context.Context, topic, group string) (int64, time.Duration, error) {
	t, o := quoteIdent(topic), quoteIdent(topic+"_offsets")
	var n int64
	if j.driver == config.DriverPostgres {
		var oldest sql.NullTime
		err := j.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(m.created_at) FROM `+t+` m
			LEFT JOIN `+o+` f ON f.consumer_group = $1
			WHERE f.consumer_group IS NULL
			   OR (m.transaction_id, m."offset") > (f.last_processed_transaction_id, f.offset_acked)`, group).Scan(&n, &oldest)
		if err != nil || !oldest.Valid {
			return n, 0, err
		}
		return n, max(time.Since(oldest.Time), 0), nil
	}
	var oldest sql.NullInt64
	err := j.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM `+t+`
		WHERE "offset" > COALESCE((SELECT offset_acked FROM `+o+` WHERE consumer_group = ?), 0)`, group).Scan(&n, &oldest)
	if err != nil || !oldest.Valid {
		return n, 0, err
	}
	return n, max(time.Since(time.UnixMilli(oldest.Int64)), 0), nil
}

func (j *janitor) pruneAll(ctx context.Context, before time.Time) {
	queues := [][2]string{{OutboxTopic, forwarderGroup}}
	if j.sqlQueue {
		queues = append(queues, [2]string{CommandTopic, commandGroup})
	}
	for _, q := range queues {
		n, err := j.prune(ctx, q[0], q[1], before)
		if err != nil && ctx.Err() == nil {
			j.log.Warn("prune forwarded rows", "table", q[0], "err", err)
		}
		if n > 0 {
			j.log.Debug("pruned forwarded rows", "table", q[0], "rows", n)
		}
	}
}

// prune deletes the rows of topic that group has acknowledged and that were
// written before before, in batches.
func (j *janitor) prune(ctx context.Context, topic, group string, before time.Time) (int64, error) {
	t, o := quoteIdent(topic), quoteIdent(topic+"_offsets")
	var (
		q    string
		args []any
	)
	if j.driver == config.DriverPostgres {
		q = `DELETE FROM ` + t + ` WHERE (transaction_id, "offset") IN (
			SELECT m.transaction_id, m."offset" FROM ` + t + ` m
			JOIN ` + o + ` f ON f.consumer_group = $1
			WHERE (m.transaction_id, m."offset") <= (f.last_processed_transaction_id, f.offset_acked)
			  AND m.created_at < $2
			LIMIT ` + fmt.Sprint(pruneBatch) + `)`
		args = []any{group, before}
	} else {
		q = `DELETE FROM ` + t + ` WHERE "offset" IN (
			SELECT "offset" FROM ` + t + `
			WHERE "offset" <= COALESCE((SELECT offset_acked FROM ` + o + ` WHERE consumer_group = ?), 0)
			  AND created_at < ?
			ORDER BY "offset" LIMIT ` + fmt.Sprint(pruneBatch) + `)`
		args = []any{group, before.UnixMilli()}
	}
	var total int64
	for range pruneMaxRounds {
		res, err := j.db.ExecContext(ctx, q, args...)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", topic, err)
		}
		n, _ := res.RowsAffected()
		total += n
		j.m.pruned.WithLabelValues(topic).Add(float64(n))
		if n < pruneBatch {
			break
		}
	}
	return total, nil
}
