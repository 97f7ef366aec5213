package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/chat-service/chat/config"
)

// SQLite connection settings added to a file:PATH DSN unless it sets them.
var sqlitePragmas = []string{
	"busy_timeout(10000)", // other connections' writers: wait, do not fail
	"journal_mode(WAL)",   // readers never block the writer
	"foreign_keys(1)",
	"synchronous(NORMAL)", // durable across process crashes; WAL's usual pairing
}

// DB is an open, migrated database.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
}

// Open connects to the database cfg names, checks that it answers and
// applies the embedded migrations. An unreachable database is an error
// naming the backend that matches chat.ErrUnavailable.
func Open(ctx context.Context, cfg config.Storage) (*DB, error) {
	db, err := openPool(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := db.start(ctx); err != nil {
		_ = db.SQL.Close() // the start error is the one worth reporting
		return nil, err
	}
	return db, nil
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.SQL.Close() }

// openPool prepares the pool without touching the database (beyond creating
// an SQLite file's directory).
func openPool(cfg config.Storage) (*DB, error) {
	d, err := DialectFor(cfg.Driver)
	if err != nil {
		return nil, err
	}
	dsn := cfg.DSN
	if d.Name == config.DriverSQLite {
		if dsn, err = sqliteDSN(dsn); err != nil {
			return nil, fmt.Errorf("storage: open sqlite: %w", err)
		}
	}
	pool, err := sql.Open(d.SQLDriver, dsn)
	if err != nil {
		// sql.Open only fails for an unknown driver; no DSN in the message.
		return nil, fmt.Errorf("storage: open %s: %w", d.Name, err)
	}
	if cfg.MaxOpenConns > 0 {
		pool.SetMaxOpenConns(cfg.MaxOpenConns)
		pool.SetMaxIdleConns(cfg.MaxOpenConns)
	}
	pool.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{SQL: pool, Dialect: d}, nil
}

// start pings and migrates; it returns the schema version.
func (db *DB) start(ctx context.Context) (int64, error) {
	if err := db.SQL.PingContext(ctx); err != nil {
		return 0, fmt.Errorf("storage: connect %s: %w", db.Dialect.Name, classify(err))
	}
	version, err := db.migrate(ctx)
	if err != nil {
		return 0, fmt.Errorf("storage: migrate %s: %w", db.Dialect.Name, classify(err))
	}
	return version, nil
}

// migrate applies pending migrations. On PostgreSQL an advisory lock keeps
// instances starting together from migrating at once.
func (db *DB) migrate(ctx context.Context) (int64, error) {
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	}
	if db.Dialect.Name == config.DriverPostgres {
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return 0, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(db.Dialect.Goose, db.SQL, db.Dialect.Migrations(), opts...)
	if err != nil {
		return 0, err
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}

// sqliteDSN adds the connection settings the store relies on to a
// file:PATH[?query] DSN and creates PATH's directory.
func sqliteDSN(dsn string) (string, error) {
	rest, ok := strings.CutPrefix(dsn, "file:")
	if !ok || rest == "" {
		return "", fmt.Errorf("dsn must be file:PATH, got %q", dsn)
	}
	path, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("dsn query: %w", err)
	}
	if path != "" && !strings.HasPrefix(path, ":") && q.Get("mode") != "memory" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return "", fmt.Errorf("create database directory: %w", err)
		}
	}
	for _, p := range sqlitePragmas {
		name, _, _ := strings.Cut(p, "(")
		if !hasPragma(q["_pragma"], name) {
			q.Add("_pragma", p)
		}
	}
	if q.Get("_txlock") == "" {
		// Write transactions take the write lock at BEGIN: two deferred
		// transactions that both read and then write would otherwise
		// deadlock into SQLITE_BUSY. Read-only transactions stay deferred.
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode(), nil
}

func hasPragma(pragmas []string, name string) bool {
	for _, p := range pragmas {
		p = strings.ToLower(strings.TrimSpace(p))
		if strings.HasPrefix(p, name) {
			return true
		}
	}
	return false
}
