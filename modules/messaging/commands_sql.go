package messaging

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// sqlCommands is the command queue in the database: the CommandTopic table
// in watermill-sql's format, written by Submit and read in batches of
// commands.prefetch by the same batch reader as the outbox. Submit wakes
// the consumer of this instance at once; commands.poll_interval is only
// the fallback. (With relay.driver memory there is one instance, so the
// in-process signal reaches the only consumer there is.)
type sqlCommands struct {
	backend  *sqlBackend
	poll     time.Duration
	prefetch int
	wake     chan struct{}
	log      *slog.Logger
}

func newSQLCommands(b *sqlBackend, poll time.Duration, prefetch int, log *slog.Logger) *sqlCommands {
	return &sqlCommands{backend: b, poll: poll, prefetch: prefetch, wake: make(chan struct{}, 1), log: log}
}

func (q *sqlCommands) submit(ctx context.Context, _ string, msg *message.Message) error {
	ins, err := q.backend.schema.InsertQuery(CommandTopic, message.Messages{msg})
	if err != nil {
		return err
	}
	if _, err := q.backend.db.ExecContext(ctx, ins.Query, ins.Args...); err != nil {
		return fmt.Errorf("insert into %s: %w", CommandTopic, err)
	}
	signal(q.wake)
	return nil
}

func (q *sqlCommands) close() error { return nil }

// consume reads batches and stores them until ctx ends. A batch is
// acknowledged once stored; one that fails is given back whole and read
// again after a backoff.
func (q *sqlCommands) consume(ctx context.Context, st *commandStore) {
	reader := q.backend.batchReader(CommandTopic, commandGroup, q.prefetch)
	defer reader.close()
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	initialized := false
	for ctx.Err() == nil {
		if !initialized {
			if err := reader.init(ctx); err != nil {
				q.log.Debug("command queue: init reader", "err", err)
				bo.Sleep(ctx)
				continue
			}
			initialized = true
		}
		b, err := reader.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				q.log.Debug("command queue: read", "err", err)
			}
			bo.Sleep(ctx)
			continue
		}
		if b == nil {
			q.idle(ctx)
			continue
		}
		if err := st.store(ctx, b.msgs); err != nil {
			_ = b.finish(ctx, 0) // gives them back; nothing to write
			if ctx.Err() == nil {
				q.log.Debug("command queue: store; retrying", "commands", len(b.msgs), "err", err)
			}
			bo.Sleep(ctx)
			continue
		}
		if err := b.finish(ctx, len(b.msgs)); err != nil && ctx.Err() == nil {
			q.log.Warn("command queue: acknowledge stored commands; they will be read again (and found stored)", "err", err)
			bo.Sleep(ctx)
			continue
		}
		bo.Reset()
	}
}

// idle waits for a wake-up or the poll interval.
func (q *sqlCommands) idle(ctx context.Context) {
	t := time.NewTimer(q.poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-q.wake:
	case <-t.C:
	}
}

// signal sets a wake-up flag without blocking; one pending is enough.
func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
