package store

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/migrations"
)

// Dialect is everything that differs between the two databases, kept in one
// place. Queries are written once, with ? placeholders and the syntax both
// share (ON CONFLICT ... DO NOTHING, RETURNING, row-value comparison); the
// rest is here:
//
//	                 sqlite                      postgres
//	placeholders     ?                           $1, $2, ... (Rebind)
//	times            INTEGER unix milliseconds   timestamptz (Time)
//	write tx         BEGIN IMMEDIATE, one writer  READ COMMITTED + row locks
//	                 at a time (SingleWriter)
type Dialect struct {
	// Name is the storage.driver value: "sqlite" or "postgres".
	Name string
	// SQLDriver is the database/sql driver name.
	SQLDriver string
	// Goose is the dialect goose migrates with.
	Goose goose.Dialect
	// Numbered placeholders ($1, $2, ...) instead of ?.
	Numbered bool
	// SingleWriter: the database takes one write transaction at a time, so
	// the store queues its writers in process rather than in SQLite's busy
	// handler, which sleeps in steps of milliseconds.
	SingleWriter bool
}

// DialectFor returns the dialect of a storage.driver value.
func DialectFor(driver string) (Dialect, error) {
	switch driver {
	case config.DriverSQLite:
		return Dialect{Name: config.DriverSQLite, SQLDriver: "sqlite", Goose: goose.DialectSQLite3, SingleWriter: true}, nil
	case config.DriverPostgres:
		return Dialect{Name: config.DriverPostgres, SQLDriver: "pgx", Goose: goose.DialectPostgres, Numbered: true}, nil
	default:
		return Dialect{}, fmt.Errorf("storage: unknown driver %q (want sqlite or postgres)", driver)
	}
}

// Migrations returns the embedded schema of the dialect.
func (d Dialect) Migrations() fs.FS {
	if d.Name == config.DriverPostgres {
		return migrations.Postgres()
	}
	return migrations.SQLite()
}

// Rebind rewrites ? placeholders for the dialect. Queries must not hold a
// literal question mark.
func (d Dialect) Rebind(query string) string {
	if !d.Numbered {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Time is the argument a timestamp column takes.
func (d Dialect) Time(t time.Time) any {
	if d.Name == config.DriverSQLite {
		return t.UnixMilli()
	}
	return t.UTC().Truncate(time.Millisecond)
}

// placeholders returns n ? separated by commas, for IN (...).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
