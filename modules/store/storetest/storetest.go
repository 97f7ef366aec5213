// Package storetest provides databases for tests (a temporary SQLite file,
// a fresh PostgreSQL database) and the conformance suite every chat.Store
// must pass (Run).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/chat-service/chat/config"
)

// PostgresEnv names the PostgreSQL server tests use, as a URL whose database
// the test user may create others from, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresEnv = "TEST_CHAT_POSTGRES_DSN"

// Backend is a database the store runs on in tests.
type Backend struct {
	Name string // the storage.driver value
	New  func(tb testing.TB) config.Storage
}

// AllBackends lists every backend chat.yaml can pick.
func AllBackends() []Backend {
	return []Backend{{"sqlite", NewSQLite}, {"postgres", NewPostgres}}
}

// Backends runs fn as one subtest per backend, named "sqlite" and
// "postgres", each with a fresh database. The PostgreSQL subtest skips when
// TEST_CHAT_POSTGRES_DSN is unset.
func Backends(t *testing.T, fn func(t *testing.T, cfg config.Storage)) {
	t.Helper()
	for _, b := range AllBackends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.New(t)) })
	}
}

// NewSQLite returns the storage config of a new SQLite file in a temporary
// directory removed after the test.
func NewSQLite(tb testing.TB) config.Storage {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "chat.db")
	return config.Storage{Driver: "sqlite", DSN: "file:" + path, MaxOpenConns: 8}
}

// NewPostgres creates a database named after the test (plus a random
// suffix) on the server TEST_CHAT_POSTGRES_DSN names, returns its storage
// config, and drops it when the test ends. It skips the test when the
// variable is unset.
func NewPostgres(tb testing.TB) config.Storage {
	tb.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		tb.Skip("needs " + PostgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: not a URL", PostgresEnv) // the URL may hold a password: not printed
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open %s: %v", PostgresEnv, err)
	}
	name := DatabaseName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		_ = admin.Close() // the create error is the one to report
		tb.Fatalf("create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return config.Storage{Driver: "postgres", DSN: u.String(), MaxOpenConns: 16}
}

// DatabaseName turns a test name into a PostgreSQL database name: lowercase
// letters, digits and underscores, a random suffix, at most 63 bytes.
func DatabaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	last := byte('_')
	for _, r := range strings.ToLower(testName) {
		c := byte('_')
		if r < 128 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			c = byte(r)
		}
		if c == '_' && last == '_' {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	name := strings.TrimSuffix(b.String(), "_")
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // crypto/rand.Read never fails
	const max = 63 - 1 - 8
	if len(name) > max {
		name = name[:max]
	}
	return fmt.Sprintf("%s_%s", name, hex.EncodeToString(suffix))
}
