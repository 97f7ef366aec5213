package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/chat-service/chat/modules/chat"
)

// IsUnavailable reports whether err means the database cannot be reached or
// cannot take the request right now (connection refused or lost, server
// shutting down, too many connections, SQLite busy or unable to open), as
// opposed to a bad query or a constraint. Callers answer it with 503.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{chat.ErrUnavailable, driver.ErrBadConn, sql.ErrConnDone,
		pgconn.ErrConnClosed, context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, target) {
			return true
		}
	}
	// database/sql does not export its "database is closed" error, nor
	// "statement is closed" (a call racing Store.Close at shutdown).
	if msg := err.Error(); strings.Contains(msg, "sql: database is closed") ||
		strings.Contains(msg, "sql: statement is closed") {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pgErr.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL:
			return true
		}
		return false
	}
	if pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// classify marks connection-level failures with chat.ErrUnavailable, keeping
// the cause; other errors pass unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, chat.ErrUnavailable) || !IsUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", chat.ErrUnavailable, err)
}

// errNotFound is what every method answers for a missing session and for a
// session the user is not a participant of; it matches chat.ErrNotFound.
func errNotFound() error {
	return &chat.Error{Kind: chat.ErrNotFound, Code: "session_not_found", Detail: "no such session"}
}
