// Package store owns the SQL of chat-service: opening the database (SQLite
// or PostgreSQL, as storage.driver says), applying the embedded migrations,
// and sessions, members, messages and unread counts behind chat.Store. There
// is one implementation; what differs between the databases is in Dialect.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
)

// Module provides *DB, *sql.DB, Dialect and *Store (also as chat.Store;
// the platform adds its Ping to /readyz as "database"). The database is pinged and migrated in OnStart, then the
// store prepares its statements; in OnStop the store closes them and then
// the pool closes.
var Module = fx.Module("store",
	fx.Decorate(func(log *slog.Logger) *slog.Logger { return log.With("module", "store") }),
	fx.Provide(
		NewDB,
		func(db *DB) *sql.DB { return db.SQL },
		func(db *DB) Dialect { return db.Dialect },
		fx.Annotate(newStore, fx.As(new(chat.Store)), fx.As(fx.Self())),
	),
	fx.Invoke(registerMetrics),
)

// DBParams are NewDB's dependencies.
type DBParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Cfg       config.Storage
	Log       *slog.Logger
}

// NewDB prepares the pool for cfg and, on start, connects and migrates: an
// unreachable database fails start-up.
func NewDB(p DBParams) (*DB, error) {
	db, err := openPool(p.Cfg)
	if err != nil {
		return nil, err
	}
	log := p.Log
	if log == nil { // called without fx
		log = slog.New(slog.DiscardHandler)
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			version, err := db.start(ctx)
			if err != nil {
				return err
			}
			log.Info("database ready", "driver", db.Dialect.Name, "schema_version", version)
			return nil
		},
		OnStop: func(context.Context) error { return db.Close() },
	})
	return db, nil
}

// newStore is New with the statements prepared on start, so a statement the
// database rejects fails start-up, and closed on stop. The hooks run after
// NewDB's on start (migrated) and before them on stop (pool still open).
func newStore(lc fx.Lifecycle, db *DB) *Store {
	s := New(db)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if _, err := s.stmts(ctx); err != nil {
				return fmt.Errorf("storage: %s: %w", db.Dialect.Name, err)
			}
			return nil
		},
		OnStop: func(context.Context) error { return s.Close() },
	})
	return s
}

// registerMetrics exports the pool's statistics (go_sql_* with db="chat").
func registerMetrics(reg prometheus.Registerer, db *sql.DB) error {
	return reg.Register(collectors.NewDBStatsCollector(db, "chat"))
}
