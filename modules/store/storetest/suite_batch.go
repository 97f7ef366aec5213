package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/chat"
)

// testAppendBatch: one batch over two sessions stores every item with
// gapless seqs in batch order per session, answers a retried clientMessageId
// (earlier, and within the batch) and a redelivered id with the original,
// fails only the item of a non-member, raises each sender's read marker and
// calls the hook once with exactly the new messages.
func testAppendBatch(t *testing.T, f *fixture) {
	a, b, c := f.user("a"), f.user("b"), f.user("c")
	s1 := f.group(time.Now(), a, b)
	s2 := f.group(time.Now(), a, c)
	orig := f.send(s1.ID, a, "c-0", "before the batch")
	redelivered := newID()
	items := []chat.NewMessage{
		{ID: newID(), SessionID: s1.ID, SenderID: a, ClientMessageID: "c-1", Content: "one"},
		{ID: newID(), SessionID: s2.ID, SenderID: c, Content: "two"},
		{ID: newID(), SessionID: s1.ID, SenderID: a, ClientMessageID: "c-0", Content: "retry of an earlier one"},
		{ID: newID(), SessionID: s1.ID, SenderID: c, Content: "not a member of s1"},
		{ID: redelivered, SessionID: s1.ID, SenderID: b, Content: "three", Redelivered: true},
		{ID: newID(), SessionID: s1.ID, SenderID: a, ClientMessageID: "c-1", Content: "retry within the batch"},
		{ID: newID(), SessionID: s2.ID, SenderID: a, Content: "four"},
	}
	var hooked []chat.Message
	res, err := f.s.AppendMessages(f.ctx, items, func(_ context.Context, _ *sql.Tx, ms []chat.Message) error {
		hooked = append(hooked, ms...)
		return nil
	})
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	type outcome struct {
		seq     int64
		created bool
		content string
	}
	got := make([]outcome, len(res))
	for i, r := range res {
		got[i] = outcome{r.Message.Seq, r.Created, r.Message.Content}
		if i == 3 {
			if !errors.Is(r.Err, chat.ErrNotFound) {
				t.Fatalf("item of a non-member: err=%v, want not found", r.Err)
			}
		} else if r.Err != nil {
			t.Fatalf("item %d: %v", i, r.Err)
		}
	}
	want := []outcome{
		{2, true, "one"}, {1, true, "two"}, {1, false, "before the batch"}, {0, false, ""},
		{3, true, "three"}, {2, false, "one"}, {2, true, "four"},
	}
	equal(t, "batch outcomes (seq, created, content)", got, want)
	equal(t, "the original of the earlier retry", res[2].Message, orig)
	if len(hooked) != 4 {
		t.Fatalf("hook got %d messages, want the 4 new ones", len(hooked))
	}
	if s := f.session(s1.ID, a); s.LastSeq != 3 || s.LastMessage == nil || s.LastMessage.Content != "three" {
		t.Fatalf("session 1 after the batch: lastSeq=%d lastMessage=%+v", s.LastSeq, s.LastMessage)
	}
	for _, p := range f.session(s1.ID, a).Participants {
		if want := map[string]int64{a: 2, b: 3}[p.UserID]; p.LastReadSeq != want {
			t.Errorf("lastReadSeq of %s = %d, want %d", p.UserID, p.LastReadSeq, want)
		}
	}
	// Delivered again as a whole: nothing new.
	again, err := f.s.AppendMessages(f.ctx, items[4:5], nil)
	if err != nil || again[0].Created || again[0].Message.Seq != 3 {
		t.Fatalf("redelivered again: %+v err=%v, want the original seq 3", again, err)
	}
	if n := f.session(s1.ID, a).LastSeq; n != 3 {
		t.Fatalf("lastSeq after a redelivery = %d, want 3", n)
	}
}

// testAppendBatchHookError: a failing hook (the outbox write) rolls back the
// whole batch: no message, no seq, no read marker.
func testAppendBatchHookError(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now(), a, b)
	items := []chat.NewMessage{
		{ID: newID(), SessionID: sess.ID, SenderID: a, ClientMessageID: "c-1", Content: "lost"},
		{ID: newID(), SessionID: sess.ID, SenderID: b, Content: "lost too"},
	}
	_, err := f.s.AppendMessages(f.ctx, items, func(context.Context, *sql.Tx, []chat.Message) error { return errHook })
	if !errors.Is(err, errHook) {
		t.Fatalf("AppendMessages with failing hook: err=%v, want the hook's", err)
	}
	got := f.session(sess.ID, a)
	if got.LastSeq != 0 || got.LastMessage != nil || got.Participants[0].LastReadSeq != 0 {
		t.Fatalf("session after rollback: %+v, want untouched", got)
	}
	if m := f.send(sess.ID, a, "c-1", "kept"); m.Seq != 1 {
		t.Fatalf("send after rollback: seq %d, want 1", m.Seq)
	}
}

// testConcurrentBatches: batches over shared sessions from many goroutines
// (as several group-commit writers or instances produce them), with retries
// of the same clientMessageIds mixed in, leave every session with seqs
// exactly 1..n, each message once, and never deadlock.
func testConcurrentBatches(t *testing.T, f *fixture) {
	users := []string{f.user("a"), f.user("b"), f.user("c"), f.user("d")}
	sessions := make([]string, 5)
	for i := range sessions {
		sessions[i] = f.group(time.Now(), users...).ID
	}
	const batches, perBatch = 40, 10
	var (
		mu      sync.Mutex
		created = map[string]int{} // session → messages created
		errs    []error
	)
	together(batches, func(i int) {
		items := make([]chat.NewMessage, perBatch)
		for j := range items {
			// Batch i+1 repeats the client ids of batch i: retries.
			k := i/2*perBatch + j
			items[j] = chat.NewMessage{
				ID: newID(), SessionID: sessions[k%len(sessions)], SenderID: users[k%len(users)],
				ClientMessageID: fmt.Sprint("c-", k), Content: fmt.Sprint(k),
			}
		}
		res, err := f.s.AppendMessages(f.ctx, items, nil)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		for j, r := range res {
			if r.Err != nil {
				errs = append(errs, r.Err)
			} else if r.Created {
				created[items[j].SessionID]++
			}
		}
	})
	if len(errs) > 0 {
		t.Fatalf("%d batches or items failed; first: %v", len(errs), errs[0])
	}
	total := 0
	for _, id := range sessions {
		after := int64(0)
		list, _, err := f.s.Messages(f.ctx, id, users[0], chat.HistoryQuery{Limit: 1000, AfterSeq: &after})
		if err != nil {
			t.Fatal(err)
		}
		seqs := make([]int64, len(list))
		clients := map[string]bool{}
		for i, m := range list {
			seqs[i] = m.Seq
			key := m.SenderID + "/" + m.ClientMessageID
			if clients[key] {
				t.Fatalf("session %s holds client message %s twice", id, key)
			}
			clients[key] = true
		}
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("session %s seqs %v, want 1..%d", id, seqs, len(seqs))
			}
		}
		if len(list) != created[id] {
			t.Fatalf("session %s holds %d messages, %d were reported created", id, len(list), created[id])
		}
		total += len(list)
	}
	if want := batches / 2 * perBatch; total != want {
		t.Fatalf("%d messages stored, want %d (every client id once)", total, want)
	}
}
