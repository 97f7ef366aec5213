package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bad conn", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"closed pool", errors.New("sql: database is closed"), true},
		{"closed statement", errors.New("sql: statement is closed"), true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"deadline", context.DeadlineExceeded, true},
		{"pgx conn closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{"connection dropped", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"canceled by the caller", context.Canceled, false},
		{"pg connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"pg admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pg cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"pg unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"pg syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"not found", chat.ErrNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsUnavailable(tc.err); got != tc.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if got := errors.Is(classify(tc.err), chat.ErrUnavailable); got != tc.want {
				t.Fatalf("classify(%v) matches ErrUnavailable = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestSQLiteDSN(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got, err := sqliteDSN("file:" + dir + "/chat.db?_pragma=busy_timeout(1)&cache=private")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"_pragma=busy_timeout%281%29", "cache=private", "_txlock=immediate",
		"journal_mode%28WAL%29", "foreign_keys%281%29"} {
		if !strings.Contains(got, want) {
			t.Errorf("dsn %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "busy_timeout%2810000") {
		t.Errorf("dsn %q overrides the caller's busy_timeout", got)
	}
	if _, err := sqliteDSN("data/chat.db"); err == nil {
		t.Error("a DSN without file: was accepted")
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	pg, _ := DialectFor(config.DriverPostgres)
	lite, _ := DialectFor(config.DriverSQLite)
	const q = `SELECT a FROM t WHERE b = ? AND c IN (?, ?)`
	if got := pg.Rebind(q); got != `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)` {
		t.Errorf("postgres: %s", got)
	}
	if got := lite.Rebind(q); got != q {
		t.Errorf("sqlite: %s", got)
	}
	if _, err := DialectFor("mysql"); err == nil {
		t.Error("unknown driver accepted")
	}
}
