package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/chat"
)

func testAppendMessage(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now().Add(-time.Minute), a, b)
	at := time.Now().Round(0)
	var hooked chat.Message
	m, created, err := f.s.AppendMessage(f.ctx, chat.NewMessage{ID: newID(), SessionID: sess.ID, SenderID: a,
		ClientMessageID: "c-1", Content: "hello", CreatedAt: chat.NewTime(at)},
		func(ctx context.Context, tx *sql.Tx, m chat.Message) error {
			hooked = m
			n, err := count(ctx, tx, fmt.Sprintf(`SELECT COUNT(*) FROM chat_messages WHERE id = '%s'`, m.ID))
			if err != nil || n != 1 {
				return fmt.Errorf("hook sees %d rows (%v), want 1", n, err)
			}
			return nil
		})
	if err != nil || !created {
		t.Fatalf("AppendMessage: created=%v err=%v", created, err)
	}
	want := chat.Message{ID: m.ID, SessionID: sess.ID, Seq: 1, SenderID: a, ClientMessageID: "c-1",
		Content: "hello", CreatedAt: chat.NewTime(at)}
	equal(t, "message", m, want)
	equal(t, "hook's message", hooked, want)
	m2 := f.send(sess.ID, b, "", "hi back")
	if m2.Seq != 2 || m2.ClientMessageID != "" {
		t.Fatalf("second message: seq=%d clientMessageId=%q, want 2 and none", m2.Seq, m2.ClientMessageID)
	}
	asA := f.session(sess.ID, a)
	if asA.LastSeq != 2 || asA.Unread != 1 || asA.LastMessage == nil || *asA.LastMessage != m2 ||
		asA.LastActivity != m2.CreatedAt {
		t.Fatalf("session as a: %+v, want lastSeq 2, unread 1, last message %+v", asA, m2)
	}
	for _, p := range asA.Participants { // each sender has read up to its own message
		if want := map[string]int64{a: 1, b: 2}[p.UserID]; p.LastReadSeq != want {
			t.Errorf("lastReadSeq of %s = %d, want %d", p.UserID, p.LastReadSeq, want)
		}
	}
	list, more, err := f.s.Messages(f.ctx, sess.ID, b, chat.HistoryQuery{Limit: 50})
	if err != nil || more {
		t.Fatalf("Messages: more=%v err=%v", more, err)
	}
	equal(t, "history", list, []chat.Message{want, m2})
}

func testAppendHookError(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now(), a, b)
	_, _, err := f.s.AppendMessage(f.ctx, chat.NewMessage{ID: newID(), SessionID: sess.ID, SenderID: a,
		ClientMessageID: "c-1", Content: "lost", CreatedAt: chat.Now()},
		func(context.Context, *sql.Tx, chat.Message) error { return errHook })
	if !errors.Is(err, errHook) {
		t.Fatalf("AppendMessage with failing hook: err=%v, want the hook's", err)
	}
	got := f.session(sess.ID, a)
	if got.LastSeq != 0 || got.LastMessage != nil || got.Participants[0].LastReadSeq != 0 {
		t.Fatalf("session after rollback: %+v, want untouched", got)
	}
	// Neither the seq nor the client id was used up.
	m := f.send(sess.ID, a, "c-1", "kept")
	if m.Seq != 1 || m.Content != "kept" {
		t.Fatalf("send after rollback: %+v, want seq 1 content kept", m)
	}
}

func testIdempotentRetry(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now(), a, b)
	orig := f.send(sess.ID, a, "c-17", "first")
	f.send(sess.ID, b, "", "between")
	hookCalled := false
	again, created, err := f.s.AppendMessage(f.ctx, chat.NewMessage{ID: newID(), SessionID: sess.ID, SenderID: a,
		ClientMessageID: "c-17", Content: "second", CreatedAt: chat.Now()},
		func(context.Context, *sql.Tx, chat.Message) error { hookCalled = true; return nil })
	if err != nil || created || hookCalled {
		t.Fatalf("retry: created=%v hookCalled=%v err=%v", created, hookCalled, err)
	}
	equal(t, "retry returns the original", again, orig)
	if other := f.send(sess.ID, b, "c-17", "b's own"); other.Seq != 3 || other.SenderID != b {
		t.Fatalf("same client id from another sender: %+v, want a new message with seq 3", other)
	}
	f.send(sess.ID, a, "", "no id")
	if noID := f.send(sess.ID, a, "", "no id"); noID.Seq != 5 {
		t.Fatalf("sends without client id are not deduplicated: seq=%d, want 5", noID.Seq)
	}
	if got := f.session(sess.ID, a).LastSeq; got != 5 {
		t.Fatalf("lastSeq = %d, want 5 (the retry used no seq)", got)
	}
}

func testMessagesPaging(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now(), a, b)
	empty, more, err := f.s.Messages(f.ctx, sess.ID, a, chat.HistoryQuery{Limit: 5})
	if err != nil || len(empty) != 0 || more {
		t.Fatalf("Messages of an empty session = %v, %v, %v; want none", empty, more, err)
	}
	for i := 1; i <= 7; i++ {
		f.send(sess.ID, []string{a, b}[i%2], "", fmt.Sprint("m", i))
	}
	seq := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name     string
		q        chat.HistoryQuery
		want     []int64
		wantMore bool
	}{
		{"latest page", chat.HistoryQuery{Limit: 3}, []int64{5, 6, 7}, true},
		{"latest, all fit exactly", chat.HistoryQuery{Limit: 7}, []int64{1, 2, 3, 4, 5, 6, 7}, false},
		{"latest, room to spare", chat.HistoryQuery{Limit: 8}, []int64{1, 2, 3, 4, 5, 6, 7}, false},
		{"before 5", chat.HistoryQuery{Limit: 3, BeforeSeq: seq(5)}, []int64{2, 3, 4}, true},
		{"before 4, exact", chat.HistoryQuery{Limit: 3, BeforeSeq: seq(4)}, []int64{1, 2, 3}, false},
		{"before 1", chat.HistoryQuery{Limit: 3, BeforeSeq: seq(1)}, nil, false},
		{"before past the end", chat.HistoryQuery{Limit: 2, BeforeSeq: seq(100)}, []int64{6, 7}, true},
		{"after 0", chat.HistoryQuery{Limit: 3, AfterSeq: seq(0)}, []int64{1, 2, 3}, true},
		{"after 4, exact", chat.HistoryQuery{Limit: 3, AfterSeq: seq(4)}, []int64{5, 6, 7}, false},
		{"after 6", chat.HistoryQuery{Limit: 3, AfterSeq: seq(6)}, []int64{7}, false},
		{"after 7", chat.HistoryQuery{Limit: 3, AfterSeq: seq(7)}, nil, false},
		{"between 2 and 6", chat.HistoryQuery{Limit: 2, AfterSeq: seq(2), BeforeSeq: seq(6)}, []int64{3, 4}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, more, err := f.s.Messages(f.ctx, sess.ID, b, tc.q)
			if err != nil {
				t.Fatalf("Messages: %v", err)
			}
			var got []int64
			for _, m := range list {
				got = append(got, m.Seq)
				if m.Content != fmt.Sprint("m", m.Seq) || m.SessionID != sess.ID {
					t.Errorf("message %d: %+v", m.Seq, m)
				}
			}
			equal(t, "seqs", got, tc.want)
			equal(t, "more", more, tc.wantMore)
		})
	}
}

func testMarkRead(t *testing.T, f *fixture) {
	a, b, c := f.user("a"), f.user("b"), f.user("c")
	sess := f.group(time.Now(), a, b, c)
	for i := 0; i < 5; i++ {
		f.send(sess.ID, a, "", "m")
	}
	var calls []string
	hook := func(_ context.Context, _ *sql.Tx, seq int64, participants []string) error {
		calls = append(calls, fmt.Sprint(seq, participants))
		return nil
	}
	all := []string{a, b, c}
	slices.Sort(all) // participants come sorted by user id
	for _, tc := range []struct {
		name        string
		seq         int64
		wantSeq     int64
		wantChanged bool
	}{
		{"zero changes nothing", 0, 0, false},
		{"forward", 2, 2, true},
		{"same again", 2, 2, false},
		{"backwards is ignored", 1, 2, false},
		{"clamped to lastSeq", 99, 5, true},
		{"past lastSeq again", 100, 5, false},
	} {
		calls = nil
		got, changed, err := f.s.MarkRead(f.ctx, sess.ID, b, tc.seq, hook)
		if err != nil || got != tc.wantSeq || changed != tc.wantChanged {
			t.Fatalf("%s: MarkRead(%d) = %d, %v, %v; want %d, %v", tc.name, tc.seq, got, changed, err, tc.wantSeq, tc.wantChanged)
		}
		var want []string
		if tc.wantChanged {
			want = []string{fmt.Sprint(tc.wantSeq, all)}
		}
		equal(t, tc.name+": hook calls", calls, want)
		if u := f.session(sess.ID, b).Unread; u != 5-tc.wantSeq {
			t.Fatalf("%s: unread = %d, want %d", tc.name, u, 5-tc.wantSeq)
		}
	}
	if _, _, err := f.s.MarkRead(f.ctx, sess.ID, c, 3, nil); err != nil {
		t.Fatalf("MarkRead without hook: %v", err)
	}
	for _, p := range f.session(sess.ID, a).Participants {
		want := map[string]int64{a: 5, b: 5, c: 3}[p.UserID]
		if p.LastReadSeq != want {
			t.Errorf("lastReadSeq of %s = %d, want %d", p.UserID, p.LastReadSeq, want)
		}
	}
}

func testMarkReadHookError(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now(), a, b)
	f.send(sess.ID, a, "", "m")
	_, _, err := f.s.MarkRead(f.ctx, sess.ID, b, 1, func(context.Context, *sql.Tx, int64, []string) error { return errHook })
	if !errors.Is(err, errHook) {
		t.Fatalf("MarkRead with failing hook: err=%v, want the hook's", err)
	}
	if u := f.session(sess.ID, b).Unread; u != 1 {
		t.Fatalf("unread after rollback = %d, want 1", u)
	}
}

func testUnreadRules(t *testing.T, f *fixture) {
	a, b, c := f.user("a"), f.user("b"), f.user("c")
	quiet := f.group(time.Now().Add(-time.Hour), a, b, c)
	older := f.group(time.Now().Add(-time.Minute), a, c)
	sess := f.group(time.Now(), a, b, c)
	f.send(older.ID, a, "", "o1")
	for i := 0; i < 3; i++ {
		f.send(sess.ID, a, "", "a")
	}
	f.send(sess.ID, b, "", "b")
	f.send(sess.ID, b, "", "b")
	unread := func(u, sid string) int64 { return f.session(sid, u).Unread }
	// a sent 1-3 (read up to 3): b's 4 and 5 are unread. b sent the last: none.
	// c read nothing: all five. Own messages never count.
	if got := []int64{unread(a, sess.ID), unread(b, sess.ID), unread(c, sess.ID)}; !slices.Equal(got, []int64{2, 0, 5}) {
		t.Fatalf("unread a, b, c = %v, want [2 0 5]", got)
	}
	list, err := f.s.Unread(f.ctx, c)
	if err != nil {
		t.Fatalf("Unread: %v", err)
	}
	equal(t, "Unread(c), newest activity first", list, []chat.UnreadCount{{SessionID: sess.ID, Unread: 5}, {SessionID: older.ID, Unread: 1}})
	if list, err := f.s.Unread(f.ctx, b); err != nil || len(list) != 0 {
		t.Fatalf("Unread(b) = %v, %v; want an empty list", list, err)
	}
	// Sending moves the sender's lastReadSeq: a's backlog is cleared.
	f.send(sess.ID, a, "", "a again")
	if got := unread(a, sess.ID); got != 0 {
		t.Fatalf("unread of a after sending = %d, want 0", got)
	}
	if got := unread(c, quiet.ID); got != 0 {
		t.Fatalf("unread of a quiet session = %d, want 0", got)
	}
}
