package messaging

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// notifyChannel is the PostgreSQL channel the outbox trigger notifies
// (migrations/postgres/00012_outbox_notify.sql).
const notifyChannel = "chat_outbox"

// listenMinConns is the smallest pool that gives the listener a connection
// of its own: it holds one for good, and the forwarder and the SQL command
// queue's reader may pin one each (pinMinConns). A smaller pool goes
// without notifications: commits on this instance still wake the
// forwarder, and outbox.poll_interval bounds the rest.
const listenMinConns = 8

// poolAtLeast reports whether db's pool may open n connections.
func poolAtLeast(db *sql.DB, n int) bool {
	maxConns := db.Stats().MaxOpenConnections // 0: unlimited
	return maxConns == 0 || maxConns >= n
}

// pgListener turns notifications on notifyChannel into wake-ups of this
// instance's forwarder: every commit that wrote outbox rows, on any
// instance, wakes the one that holds the forwarder lock. It keeps one pool
// connection LISTENing, and after losing it wakes the forwarder once (a
// notification may have been missed) and listens again.
type pgListener struct {
	db   *sql.DB
	wake chan<- struct{}
	log  *slog.Logger
}

func (l *pgListener) run(ctx context.Context) {
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		err := l.listen(ctx, bo)
		signal(l.wake)
		if ctx.Err() != nil {
			return
		}
		l.log.Debug("outbox notifications lost; listening again", "err", err)
		bo.Sleep(ctx)
	}
}

// listen holds a connection in LISTEN until it fails or ctx ends.
func (l *pgListener) listen(ctx context.Context, bo *backoff) error {
	c, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer discard(c) // its session LISTENs: never back to the pool
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("outbox notifications need the pgx driver, not %T", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
			return err
		}
		bo.Reset()
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				return err
			}
			signal(l.wake)
		}
	})
}
