package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chat-service/chat/modules/chat"
)

// Run runs the chat.Store conformance suite. open is called once; the
// subtests share the store and run in parallel, each with its own users and
// sessions.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	s := open(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"CreateGroupSession", testCreateGroupSession},
		{"CreateSessionHookErrorRollsBack", testCreateSessionHookError},
		{"DirectSessionExists", testDirectSessionExists},
		{"DirectSessionRace", testDirectSessionRace},
		{"NotParticipant", testNotParticipant},
		{"AppendMessage", testAppendMessage},
		{"AppendHookErrorRollsBack", testAppendHookError},
		{"IdempotentRetry", testIdempotentRetry},
		{"ConcurrentAppendIsGapless", testConcurrentAppend},
		{"ConcurrentRetriesStoreOne", testConcurrentRetries},
		{"AppendBatch", testAppendBatch},
		{"AppendBatchHookErrorRollsBack", testAppendBatchHookError},
		{"ConcurrentBatches", testConcurrentBatches},
		{"MessagesPaging", testMessagesPaging},
		{"MarkRead", testMarkRead},
		{"MarkReadHookErrorRollsBack", testMarkReadHookError},
		{"UnreadRules", testUnreadRules},
		{"SessionsOrderAndPaging", testSessionsPaging},
		{"Ping", func(t *testing.T, f *fixture) {
			if err := f.s.Ping(f.ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newFixture(t, s))
		})
	}
}

var errHook = errors.New("hook refused")

// fixture gives a subtest its own user ids and short helpers.
type fixture struct {
	t   *testing.T
	s   chat.Store
	ctx context.Context
	pfx string
}

func newFixture(t *testing.T, s chat.Store) *fixture {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{t: t, s: s, ctx: ctx, pfx: hex.EncodeToString(b)}
}

// user returns a user id unique to this subtest.
func (f *fixture) user(name string) string { return f.pfx + "-" + name }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// group creates a group session of users (the first is the creator).
func (f *fixture) group(at time.Time, users ...string) chat.Session {
	f.t.Helper()
	title := "group " + f.pfx
	sess, created, err := f.s.CreateSession(f.ctx, chat.NewSession{
		ID: newID(), Type: chat.TypeGroup, Title: &title, CreatorID: users[0],
		Participants: users, CreatedAt: chat.NewTime(at),
	}, nil)
	if err != nil || !created {
		f.t.Fatalf("CreateSession: created=%v err=%v", created, err)
	}
	return sess
}

func (f *fixture) send(sessionID, sender, clientID, content string) chat.Message {
	f.t.Helper()
	m, _, err := f.s.AppendMessage(f.ctx, chat.NewMessage{
		ID: newID(), SessionID: sessionID, SenderID: sender, ClientMessageID: clientID,
		Content: content, CreatedAt: chat.Now(),
	}, nil)
	if err != nil {
		f.t.Fatalf("AppendMessage: %v", err)
	}
	return m
}

func (f *fixture) session(id, user string) chat.Session {
	f.t.Helper()
	sess, err := f.s.Session(f.ctx, id, user)
	if err != nil {
		f.t.Fatalf("Session(%s): %v", user, err)
	}
	return sess
}

// count runs a COUNT(*) query with no arguments (so it is dialect-neutral).
func count(ctx context.Context, tx *sql.Tx, query string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, query).Scan(&n)
	return n, err
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testCreateGroupSession(t *testing.T, f *fixture) {
	a, b, c := f.user("a"), f.user("b"), f.user("c")
	at := time.Now().Add(-time.Hour).Round(0) // nanoseconds: the store keeps milliseconds
	title := "Weekend"
	hookCalls := 0
	ns := chat.NewSession{
		ID: newID(), Type: chat.TypeGroup, Title: &title, CreatorID: b,
		Participants: []string{c, b, a, c}, CreatedAt: chat.NewTime(at),
	}
	got, created, err := f.s.CreateSession(f.ctx, ns, func(ctx context.Context, tx *sql.Tx, s chat.Session) error {
		hookCalls++
		n, err := count(ctx, tx, fmt.Sprintf(`SELECT COUNT(*) FROM chat_session_members WHERE session_id = '%s'`, s.ID))
		if err != nil || n != 3 {
			return fmt.Errorf("hook sees %d members (%v), want 3", n, err)
		}
		return nil
	})
	if err != nil || !created || hookCalls != 1 {
		t.Fatalf("CreateSession: created=%v hookCalls=%d err=%v", created, hookCalls, err)
	}
	want := chat.Session{
		ID: ns.ID, Type: chat.TypeGroup, Title: &title, CreatedAt: chat.NewTime(at),
		Participants: []chat.Participant{{UserID: a, Role: chat.RoleMember}, {UserID: b, Role: chat.RoleOwner}, {UserID: c, Role: chat.RoleMember}},
		LastActivity: chat.NewTime(at),
	}
	equal(t, "created session", got, want)
	for _, u := range []string{a, b, c} {
		equal(t, "Session as "+u, f.session(ns.ID, u), want)
	}
	users, _, err := f.s.Participants(f.ctx, ns.ID)
	if err != nil {
		t.Fatalf("Participants: %v", err)
	}
	equal(t, "Participants", users, []string{a, b, c})
}

func testCreateSessionHookError(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	ns := chat.NewSession{ID: newID(), Type: chat.TypeDirect, CreatorID: a, Participants: []string{a, b},
		DirectKey: a + "|" + b, CreatedAt: chat.Now()}
	_, _, err := f.s.CreateSession(f.ctx, ns, func(context.Context, *sql.Tx, chat.Session) error { return errHook })
	if !errors.Is(err, errHook) {
		t.Fatalf("CreateSession with failing hook: err=%v, want the hook's", err)
	}
	if _, err := f.s.Session(f.ctx, ns.ID, a); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("Session after rollback: err=%v, want ErrNotFound", err)
	}
	if _, created, err := f.s.CreateSession(f.ctx, ns, nil); err != nil || !created {
		t.Fatalf("CreateSession again: created=%v err=%v (direct key must be free)", created, err)
	}
}

func testDirectSessionExists(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	key := a + "|" + b
	first, created, err := f.s.CreateSession(f.ctx, chat.NewSession{ID: newID(), Type: chat.TypeDirect,
		CreatorID: a, Participants: []string{a, b}, DirectKey: key, CreatedAt: chat.Now()}, nil)
	if err != nil || !created {
		t.Fatalf("CreateSession: created=%v err=%v", created, err)
	}
	f.send(first.ID, a, "", "hi")
	hookCalled := false
	again, created, err := f.s.CreateSession(f.ctx, chat.NewSession{ID: newID(), Type: chat.TypeDirect,
		CreatorID: b, Participants: []string{b, a}, DirectKey: key, CreatedAt: chat.Now()},
		func(context.Context, *sql.Tx, chat.Session) error { hookCalled = true; return nil })
	if err != nil || created || hookCalled {
		t.Fatalf("CreateSession of an existing pair: created=%v hookCalled=%v err=%v", created, hookCalled, err)
	}
	equal(t, "existing session as b", again, f.session(first.ID, b))
	if again.ID != first.ID || again.Unread != 1 {
		t.Fatalf("existing session: id=%s unread=%d, want %s and 1 (as seen by b)", again.ID, again.Unread, first.ID)
	}
}

func testNotParticipant(t *testing.T, f *fixture) {
	a, b, eve := f.user("a"), f.user("b"), f.user("eve")
	sess := f.group(time.Now(), a, b)
	f.send(sess.ID, a, "", "secret")
	missing := newID()
	for _, tc := range []struct{ name, session, user string }{
		{"outsider", sess.ID, eve},
		{"missing session", missing, a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, chat.ErrNotFound) {
					t.Errorf("%s: err=%v, want ErrNotFound", op, err)
				}
			}
			_, err := f.s.Session(f.ctx, tc.session, tc.user)
			check("Session", err)
			_, _, err = f.s.Messages(f.ctx, tc.session, tc.user, chat.HistoryQuery{Limit: 10})
			check("Messages", err)
			hook := false
			_, _, err = f.s.AppendMessage(f.ctx, chat.NewMessage{ID: newID(), SessionID: tc.session,
				SenderID: tc.user, Content: "x", CreatedAt: chat.Now()},
				func(context.Context, *sql.Tx, chat.Message) error { hook = true; return nil })
			check("AppendMessage", err)
			_, _, err = f.s.MarkRead(f.ctx, tc.session, tc.user, 1,
				func(context.Context, *sql.Tx, int64, []string) error { hook = true; return nil })
			check("MarkRead", err)
			if hook {
				t.Error("a hook ran for a non-participant")
			}
		})
	}
	if _, _, err := f.s.Participants(f.ctx, missing); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Participants(missing): err=%v, want ErrNotFound", err)
	}
	if got := f.session(sess.ID, a).LastSeq; got != 1 {
		t.Errorf("LastSeq after refused sends = %d, want 1", got)
	}
	list, more, err := f.s.Sessions(f.ctx, eve, 10, nil)
	if err != nil || len(list) != 0 || more {
		t.Errorf("Sessions(eve) = %v, %v, %v; want none", list, more, err)
	}
}
