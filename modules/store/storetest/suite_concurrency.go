package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/chat"
)

// together runs fn(i) for i in [0, n) on n goroutines released at once and
// waits for all of them.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func testDirectSessionRace(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	const n = 24
	var (
		ids     = make([]string, n)
		created = make([]bool, n)
		errs    = make([]error, n)
		hooks   atomic.Int32
	)
	together(n, func(i int) {
		creator, other := a, b
		if i%2 == 1 {
			creator, other = b, a
		}
		var s chat.Session
		s, created[i], errs[i] = f.s.CreateSession(f.ctx, chat.NewSession{ID: newID(), Type: chat.TypeDirect,
			CreatorID: creator, Participants: []string{creator, other}, DirectKey: a + "|" + b, CreatedAt: chat.Now()},
			func(context.Context, *sql.Tx, chat.Session) error { hooks.Add(1); return nil })
		ids[i] = s.ID
	})
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("CreateSession %d: %v", i, errs[i])
		}
		if created[i] {
			winners++
		}
		if ids[i] != ids[0] {
			t.Fatalf("CreateSession %d returned session %s, another returned %s", i, ids[i], ids[0])
		}
	}
	if winners != 1 || hooks.Load() != 1 {
		t.Fatalf("%d creations reported, %d hooks ran; want exactly one of each", winners, hooks.Load())
	}
	list, more, err := f.s.Sessions(f.ctx, a, 10, nil)
	if err != nil || len(list) != 1 || more {
		t.Fatalf("Sessions(a) = %d sessions, more=%v, err=%v; want exactly one", len(list), more, err)
	}
}

func testConcurrentAppend(t *testing.T, f *fixture) {
	users := []string{f.user("a"), f.user("b"), f.user("c"), f.user("d")}
	sess := f.group(time.Now(), users...)
	const n = 200
	var (
		seqs    = make([]int64, n)
		errs    = make([]error, n)
		maxSeen sync.Map // user -> highest seq it got
	)
	together(n, func(i int) {
		u := users[i%len(users)]
		var m chat.Message
		m, _, errs[i] = f.s.AppendMessage(f.ctx, chat.NewMessage{ID: newID(), SessionID: sess.ID, SenderID: u,
			ClientMessageID: fmt.Sprint("c-", i), Content: fmt.Sprint(i), CreatedAt: chat.Now()}, nil)
		seqs[i] = m.Seq
		for {
			prev, loaded := maxSeen.LoadOrStore(u, m.Seq)
			if !loaded || prev.(int64) >= m.Seq || maxSeen.CompareAndSwap(u, prev, m.Seq) {
				break
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("AppendMessage %d: %v", i, err)
		}
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("seqs returned are not 1..%d: position %d holds %d", n, i, s)
		}
	}
	after := int64(0)
	list, more, err := f.s.Messages(f.ctx, sess.ID, users[0], chat.HistoryQuery{Limit: n, AfterSeq: &after})
	if err != nil || more || len(list) != n {
		t.Fatalf("Messages: %d messages, more=%v, err=%v; want %d", len(list), more, err, n)
	}
	for i, m := range list {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored history has seq %d at position %d", m.Seq, i)
		}
	}
	got := f.session(sess.ID, users[0])
	if got.LastSeq != n || got.LastMessage == nil || got.LastMessage.Seq != n {
		t.Fatalf("session: lastSeq=%d lastMessage=%+v, want %d", got.LastSeq, got.LastMessage, n)
	}
	for _, p := range got.Participants {
		want, _ := maxSeen.Load(p.UserID)
		if p.LastReadSeq != want.(int64) {
			t.Errorf("lastReadSeq of %s = %d, want its last message's seq %d", p.UserID, p.LastReadSeq, want)
		}
	}
}

func testConcurrentRetries(t *testing.T, f *fixture) {
	a, b := f.user("a"), f.user("b")
	sess := f.group(time.Now(), a, b)
	const n = 50
	var (
		msgs    = make([]chat.Message, n)
		created = make([]bool, n)
		errs    = make([]error, n)
		hooks   atomic.Int32
	)
	together(n, func(i int) {
		msgs[i], created[i], errs[i] = f.s.AppendMessage(f.ctx, chat.NewMessage{ID: newID(), SessionID: sess.ID,
			SenderID: a, ClientMessageID: "retry-1", Content: fmt.Sprint("attempt ", i), CreatedAt: chat.Now()},
			func(context.Context, *sql.Tx, chat.Message) error { hooks.Add(1); return nil })
	})
	winner := -1
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("AppendMessage %d: %v", i, errs[i])
		}
		if created[i] {
			if winner >= 0 {
				t.Fatalf("attempts %d and %d both report created", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 || hooks.Load() != 1 {
		t.Fatalf("winner=%d hooks=%d; want one creation and one hook call", winner, hooks.Load())
	}
	for i := range n {
		equal(t, fmt.Sprint("attempt ", i), msgs[i], msgs[winner])
	}
	list, _, err := f.s.Messages(f.ctx, sess.ID, b, chat.HistoryQuery{Limit: 10})
	if err != nil || len(list) != 1 || list[0] != msgs[winner] {
		t.Fatalf("history = %+v, %v; want only %+v", list, err, msgs[winner])
	}
	if got := f.session(sess.ID, b); got.LastSeq != 1 || got.Unread != 1 {
		t.Fatalf("session: lastSeq=%d unread=%d, want 1 and 1", got.LastSeq, got.Unread)
	}
}

func testSessionsPaging(t *testing.T, f *fixture) {
	u, v, w := f.user("u"), f.user("v"), f.user("w")
	base := time.Now().Add(-time.Hour)
	var s []chat.Session
	for i := range 5 {
		s = append(s, f.group(base.Add(time.Duration(i)*time.Second), u, []string{v, w}[i%2]))
	}
	tieA := f.group(base.Add(10*time.Second), u, v)
	tieB := f.group(base.Add(10*time.Second), w, u) // u is not the creator here
	f.group(base.Add(30*time.Second), v, w)         // not u's
	f.send(s[1].ID, w, "", "bump")                  // newest activity now
	first, second := tieA, tieB
	if second.ID > first.ID {
		first, second = second, first
	}
	wantOrder := []string{s[1].ID, first.ID, second.ID, s[4].ID, s[3].ID, s[2].ID, s[0].ID}

	all, more, err := f.s.Sessions(f.ctx, u, len(wantOrder), nil)
	if err != nil || more {
		t.Fatalf("Sessions(limit %d): more=%v err=%v; want everything, more=false", len(wantOrder), more, err)
	}
	equal(t, "order", ids(all), wantOrder)
	for _, sess := range all {
		equal(t, "listed session "+sess.ID, sess, f.session(sess.ID, u))
	}
	if all[0].Unread != 1 || all[0].LastMessage == nil || all[0].LastActivity != all[0].LastMessage.CreatedAt {
		t.Fatalf("bumped session: %+v, want unread 1 and activity at its last message", all[0])
	}
	if _, more, _ := f.s.Sessions(f.ctx, u, len(wantOrder)-1, nil); !more {
		t.Fatal("Sessions(limit one short): more=false, want true")
	}

	var paged []string
	var cursor *chat.SessionCursor
	for page := 0; ; page++ {
		list, more, err := f.s.Sessions(f.ctx, u, 2, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		paged = append(paged, ids(list)...)
		if wantMore := len(paged) < len(wantOrder); more != wantMore {
			t.Fatalf("page %d: more=%v after %d of %d sessions", page, more, len(paged), len(wantOrder))
		}
		if !more {
			break
		}
		last := list[len(list)-1]
		cursor = &chat.SessionCursor{Activity: last.LastActivity, ID: last.ID}
	}
	equal(t, "paged order", paged, wantOrder)
}

func ids(list []chat.Session) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}
