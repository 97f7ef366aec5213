package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

func open(tb testing.TB, cfg config.Storage) *store.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() }) // a test may have closed it already
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) chat.Store { return store.New(open(t, cfg)) })
	})
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		open(t, cfg)
		db := open(t, cfg)
		var n int
		if err := db.SQL.QueryRow(`SELECT COUNT(*) FROM chat_messages`).Scan(&n); err != nil {
			t.Fatalf("schema after second open: %v", err)
		}
	})
}

func TestClosedDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		db := open(t, cfg)
		s := store.New(db)
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := context.Background()
		_, err := s.Session(ctx, "0193", "alice")
		assertUnavailable(t, "Session", err)
		_, _, err = s.AppendMessage(ctx, chat.NewMessage{ID: "m", SessionID: "0193", SenderID: "alice", Content: "x"}, nil)
		assertUnavailable(t, "AppendMessage", err)
		assertUnavailable(t, "Ping", s.Ping(ctx))
	})
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		s := store.New(open(t, cfg))
		ctx := context.Background()
		if _, err := s.Unread(ctx, "alice"); err != nil {
			t.Fatalf("Unread: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err := s.Session(ctx, "0193", "alice")
		assertUnavailable(t, "Session", err)
		_, _, err = s.AppendMessage(ctx, chat.NewMessage{ID: "m", SessionID: "0193", SenderID: "alice", Content: "x"}, nil)
		assertUnavailable(t, "AppendMessage", err)
	})
}

// TestPostgresGoesAway refuses new connections to a running store's database
// and drops the open ones: every call then answers ErrUnavailable.
func TestPostgresGoesAway(t *testing.T) {
	t.Parallel()
	cfg := storetest.NewPostgres(t)
	db := open(t, cfg)
	s := store.New(db)
	ctx := context.Background()
	var name string
	if err := db.SQL.QueryRowContext(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", os.Getenv(storetest.PostgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE "`+name+`" ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Sessions(ctx, "alice", 10, nil)
	assertUnavailable(t, "Sessions", err)
	assertUnavailable(t, "Ping", s.Ping(ctx))
}

// TestPostgresComesBack takes a store's database away after its statements
// were prepared and used, then lets it back: the calls in between answer
// ErrUnavailable, and afterwards the same statements work on new connections.
func TestPostgresComesBack(t *testing.T) {
	t.Parallel()
	cfg := storetest.NewPostgres(t)
	db := open(t, cfg)
	s := store.New(db)
	t.Cleanup(func() { _ = s.Close() }) // the pool's cleanup would release them anyway
	ctx := context.Background()
	sess, _, err := s.CreateSession(ctx, chat.NewSession{ID: uuid.Must(uuid.NewV7()).String(), Type: chat.TypeGroup,
		CreatorID: "alice", Participants: []string{"bob"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	roundTrip := func() error { // a send and the reads around it
		n++
		if _, _, err := s.Participants(ctx, sess.ID); err != nil {
			return err
		}
		m, _, err := s.AppendMessage(ctx, chat.NewMessage{ID: uuid.Must(uuid.NewV7()).String(), SessionID: sess.ID,
			SenderID: "alice", ClientMessageID: fmt.Sprint("c-", n), Content: "hi"}, nil)
		if err != nil {
			return err
		}
		if _, _, err := s.Messages(ctx, sess.ID, "bob", chat.HistoryQuery{Limit: 10}); err != nil {
			return err
		}
		if _, _, err := s.MarkRead(ctx, sess.ID, "bob", m.Seq, nil); err != nil {
			return err
		}
		_, err = s.Session(ctx, sess.ID, "bob")
		return err
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("before the outage: %v", err)
	}

	var name string
	if err := db.SQL.QueryRowContext(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", os.Getenv(storetest.PostgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	allow := func(yes bool) {
		t.Helper()
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE "%s" ALLOW_CONNECTIONS %t`, name, yes)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	assertUnavailable(t, "round trip during the outage", roundTrip())
	assertUnavailable(t, "round trip during the outage", roundTrip())
	allow(true)

	// A connection that died in the outage fails the call that meets it and
	// leaves the pool; the pool holds only a few.
	for attempt := 1; ; attempt++ {
		err := roundTrip()
		if err == nil {
			t.Logf("round trip after the outage succeeded on attempt %d", attempt)
			break
		}
		if !errors.Is(err, chat.ErrUnavailable) || attempt == 10 {
			t.Fatalf("round trip %d after the outage: %v", attempt, err)
		}
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Open(ctx, config.Storage{Driver: "postgres",
		DSN: "postgres://chat:s3cret-pw@127.0.0.1:1/chat?sslmode=disable&connect_timeout=2", MaxOpenConns: 2})
	assertUnavailable(t, "Open", err)
	if !strings.HasPrefix(err.Error(), "storage: connect postgres: ") {
		t.Errorf("error %q does not start with the backend", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "data")
	db := open(t, config.Storage{Driver: "sqlite", DSN: "file:" + filepath.Join(dir, "chat.db"), MaxOpenConns: 2})
	var mode string
	if err := db.SQL.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := db.SQL.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "chat.db")); err != nil {
		t.Fatalf("database file: %v", err)
	}
}

func TestOpenSQLiteBadPath(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(context.Background(), config.Storage{Driver: "sqlite", DSN: "file:" + file + "/sub/chat.db"})
	if err == nil || !strings.HasPrefix(err.Error(), "storage: open sqlite: ") {
		t.Fatalf("Open under a regular file: %v, want an error naming sqlite", err)
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		var s chat.Store
		app := fxtest.New(t,
			fx.Supply(cfg, slog.New(slog.DiscardHandler)),
			fx.Provide(func() prometheus.Registerer { return reg }),
			store.Module,
			fx.Populate(&s),
		)
		app.RequireStart()
		if err := s.Ping(context.Background()); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if _, _, err := s.Sessions(context.Background(), "alice", 10, nil); err != nil {
			t.Fatalf("Sessions through fx: %v", err)
		}
		families, err := reg.Gather()
		found := false
		for _, mf := range families {
			found = found || mf.GetName() == "go_sql_open_connections"
		}
		if err != nil || !found {
			t.Fatalf("pool metrics not registered (err=%v)", err)
		}
		app.RequireStop()
		assertUnavailable(t, "ping after stop", s.Ping(context.Background()))
	})
}

func assertUnavailable(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, chat.ErrUnavailable) {
		t.Errorf("%s: err=%v, want one matching chat.ErrUnavailable", op, err)
	}
}
