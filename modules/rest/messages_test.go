package rest_test

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

type page struct {
	Messages []chat.Message `json:"messages"`
	HasMore  bool           `json:"hasMore"`
}

func history(t *testing.T, a *platformtest.App, token, sid, query string) page {
	t.Helper()
	res := a.Do("GET", "/api/chat/sessions/"+sid+"/messages"+query, token, nil)
	if res.Status != 200 {
		t.Fatalf("history %s: %d %s", query, res.Status, res.Body)
	}
	var p page
	res.JSON(t, &p)
	return p
}

func seqs(ms []chat.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func TestSendAndHistory(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		first, status := send(t, a, u.alice, s.ID, "hello", "c-1")
		if status != http.StatusCreated || first.Seq != 1 || first.SenderID != "alice" || first.ClientMessageID != "c-1" || first.SessionID != s.ID {
			t.Fatalf("first message: %d %+v", status, first)
		}
		if first.Sender == nil || first.Sender.DisplayName != "Alice" {
			t.Errorf("sender not enriched: %+v", first.Sender)
		}
		retry, status := send(t, a, u.alice, s.ID, "different content", "c-1")
		if status != http.StatusOK || retry.ID != first.ID || retry.Content != "hello" || retry.Seq != 1 {
			t.Fatalf("idempotent retry: %d %+v", status, retry)
		}
		// The same clientMessageId from another sender is another message.
		other, status := send(t, a, u.bob, s.ID, "hi", "c-1")
		if status != http.StatusCreated || other.Seq != 2 {
			t.Fatalf("bob's c-1: %d %+v", status, other)
		}
		for i := 3; i <= 120; i++ {
			send(t, a, u.alice, s.ID, "m"+strconv.Itoa(i), "")
		}

		latest := history(t, a, u.bob, s.ID, "")
		if len(latest.Messages) != 50 || latest.Messages[0].Seq != 71 || latest.Messages[49].Seq != 120 || !latest.HasMore {
			t.Fatalf("latest page: %v more=%v", seqs(latest.Messages), latest.HasMore)
		}
		older := history(t, a, u.bob, s.ID, "?beforeSeq=71&limit=70")
		if len(older.Messages) != 70 || older.Messages[0].Seq != 1 || older.Messages[69].Seq != 70 || older.HasMore {
			t.Fatalf("before 71: %v more=%v", seqs(older.Messages), older.HasMore)
		}
		if p := history(t, a, u.bob, s.ID, "?beforeSeq=70&limit=68"); !p.HasMore || p.Messages[0].Seq != 2 {
			t.Fatalf("hasMore must be exact: %v more=%v", seqs(p.Messages), p.HasMore)
		}
		newer := history(t, a, u.bob, s.ID, "?afterSeq=100&limit=10")
		if len(newer.Messages) != 10 || newer.Messages[0].Seq != 101 || !newer.HasMore {
			t.Fatalf("after 100: %v more=%v", seqs(newer.Messages), newer.HasMore)
		}
		if p := history(t, a, u.bob, s.ID, "?afterSeq=110&limit=10"); len(p.Messages) != 10 || p.HasMore {
			t.Fatalf("after 110 is the last page: %v more=%v", seqs(p.Messages), p.HasMore)
		}
		if p := history(t, a, u.bob, s.ID, "?afterSeq=120"); len(p.Messages) != 0 || p.HasMore {
			t.Fatalf("after the end: %v", seqs(p.Messages))
		}
		if p := history(t, a, u.bob, s.ID, "?limit=200"); len(p.Messages) != 120 || p.HasMore {
			t.Fatalf("whole history: %d more=%v", len(p.Messages), p.HasMore)
		}
		if p := history(t, a, u.alice, s.ID, "?limit=1"); p.Messages[0].Sender == nil {
			t.Errorf("history messages are enriched: %+v", p.Messages[0])
		}

		// The session reflects the conversation for each side.
		var forBob chat.Session
		a.Do("GET", "/api/chat/sessions/"+s.ID, u.bob, nil).JSON(t, &forBob)
		if forBob.LastSeq != 120 || forBob.LastMessage == nil || forBob.LastMessage.Seq != 120 || forBob.Unread != 118 {
			t.Fatalf("bob's view: lastSeq %d unread %d last %+v", forBob.LastSeq, forBob.Unread, forBob.LastMessage)
		}
	})
}

func TestReadMarkersAndUnread(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		g := createSession(t, a, u.alice, `{"participants":["bob","carol"],"title":"g"}`)
		for i := 0; i < 5; i++ {
			send(t, a, u.alice, s.ID, "x", "")
		}
		send(t, a, u.alice, g.ID, "y", "")
		send(t, a, u.alice, g.ID, "y", "")

		type totals struct {
			Total    int64              `json:"total"`
			Sessions []chat.UnreadCount `json:"sessions"`
		}
		unread := func(token string) totals {
			var tt totals
			a.Do("GET", "/api/chat/unread", token, nil).JSON(t, &tt)
			sort.Slice(tt.Sessions, func(i, j int) bool { return tt.Sessions[i].SessionID < tt.Sessions[j].SessionID })
			return tt
		}
		if got := unread(u.bob); got.Total != 7 || len(got.Sessions) != 2 {
			t.Fatalf("bob: %+v", got)
		}
		if got := unread(u.alice); got.Total != 0 || len(got.Sessions) != 0 {
			t.Fatalf("own messages are never unread: %+v", got)
		}
		read := func(token, sid, body string) int {
			return a.Do("POST", "/api/chat/sessions/"+sid+"/read", token, body).Status
		}
		lastRead := func(token, sid, user string) int64 {
			var sess chat.Session
			a.Do("GET", "/api/chat/sessions/"+sid, token, nil).JSON(t, &sess)
			for _, p := range sess.Participants {
				if p.UserID == user {
					return p.LastReadSeq
				}
			}
			t.Fatalf("%s not in %s", user, sid)
			return 0
		}
		for _, tc := range []struct {
			name, body string
			want       int64
		}{
			{"read up to 3", `{"seq":3}`, 3},
			{"zero changes nothing", `{"seq":0}`, 3},
			{"backwards changes nothing", `{"seq":2}`, 3},
			{"past the end is clamped", `{"seq":999}`, 5},
		} {
			if st := read(u.bob, s.ID, tc.body); st != http.StatusNoContent {
				t.Fatalf("%s: status %d", tc.name, st)
			}
			if got := lastRead(u.bob, s.ID, "bob"); got != tc.want {
				t.Fatalf("%s: lastReadSeq %d, want %d", tc.name, got, tc.want)
			}
		}
		if got := unread(u.bob); got.Total != 2 || len(got.Sessions) != 1 || got.Sessions[0].SessionID != g.ID {
			t.Fatalf("after reading s: %+v", got)
		}
		// Sending moves one's own marker: bob answers in g and has read it all.
		send(t, a, u.bob, g.ID, "z", "")
		if got := unread(u.bob); got.Total != 0 {
			t.Fatalf("sending reads the session: %+v", got)
		}
		if got := unread(u.carol); got.Total != 3 {
			t.Fatalf("carol: %+v", got)
		}
		for _, tc := range []struct{ name, body, code string }{
			{"negative", `{"seq":-1}`, "invalid_seq"},
			{"missing", `{}`, "invalid_seq"},
			{"string", `{"seq":"3"}`, "invalid_seq"},
			{"fraction", `{"seq":1.5}`, "invalid_seq"},
		} {
			res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/read", u.bob, tc.body)
			if res.Status != 400 || res.Problem(t) != tc.code {
				t.Errorf("%s: %d %s", tc.name, res.Status, res.Body)
			}
		}
	})
}

func TestListSessionsByActivity(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		var ids []string
		for i := 0; i < 7; i++ {
			s := createSession(t, a, u.alice, fmt.Sprintf(`{"participants":["user%d"]}`, i))
			ids = append(ids, s.ID)
		}
		// Activity: a message in the oldest session makes it the most recent.
		// (Times have millisecond resolution and ties go by id: let the
		// clock move past the last creation first.)
		time.Sleep(2 * time.Millisecond)
		send(t, a, u.alice, ids[0], "bump", "")
		want := []string{ids[0], ids[6], ids[5], ids[4], ids[3], ids[2], ids[1]}

		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			q := "?limit=3"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			res := a.Do("GET", "/api/chat/sessions"+q, u.alice, nil)
			var body struct {
				Sessions   []chat.Session `json:"sessions"`
				NextCursor *string        `json:"nextCursor"`
			}
			res.JSON(t, &body)
			for _, s := range body.Sessions {
				got = append(got, s.ID)
			}
			if body.NextCursor == nil {
				break
			}
			cursor = *body.NextCursor
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("order\n got %v\nwant %v", got, want)
		}
		var bob struct {
			Sessions   []chat.Session `json:"sessions"`
			NextCursor *string        `json:"nextCursor"`
		}
		a.Do("GET", "/api/chat/sessions", u.bob, nil).JSON(t, &bob)
		if len(bob.Sessions) != 0 || bob.NextCursor != nil {
			t.Fatalf("bob sees sessions he is not in: %+v", bob)
		}
	})
}

func TestConcurrentSends(t *testing.T) {
	backends(t, func(c *config.Config) { c.Limits.RatePerSecond, c.Limits.Burst = 1000, 1000 }, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		s := createSession(t, a, u.alice, `{"participants":["bob","carol","dave"]}`)
		senders := []string{u.alice, u.bob, u.carol, platformtest.Token(t, "dave")}
		var wg sync.WaitGroup
		got := make(chan int64, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", senders[i%4], map[string]string{"content": "m" + strconv.Itoa(i)})
				if res.Status != http.StatusCreated {
					t.Errorf("send %d: %d %s", i, res.Status, res.Body)
					return
				}
				var m chat.Message
				res.JSON(t, &m)
				got <- m.Seq
			}(i)
		}
		wg.Wait()
		close(got)
		var all []int64
		for s := range got {
			all = append(all, s)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		for i, s := range all {
			if s != int64(i+1) {
				t.Fatalf("seqs are not 1..200 without gaps or duplicates: %v", all)
			}
		}
		if len(all) != 200 {
			t.Fatalf("%d sends succeeded", len(all))
		}

		// 50 concurrent retries of one clientMessageId store one message.
		ids := make(chan string, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", u.bob, `{"content":"once","clientMessageId":"retry-1"}`)
				if res.Status != http.StatusCreated && res.Status != http.StatusOK {
					t.Errorf("retry: %d %s", res.Status, res.Body)
					return
				}
				var m chat.Message
				res.JSON(t, &m)
				ids <- m.ID
			}()
		}
		wg.Wait()
		close(ids)
		distinct := map[string]bool{}
		for id := range ids {
			distinct[id] = true
		}
		if len(distinct) != 1 {
			t.Fatalf("%d distinct messages for one clientMessageId", len(distinct))
		}
		if p := history(t, a, u.alice, s.ID, "?afterSeq=200"); len(p.Messages) != 1 || p.Messages[0].Seq != 201 {
			t.Fatalf("after the retries: %v", seqs(p.Messages))
		}
	})
}
