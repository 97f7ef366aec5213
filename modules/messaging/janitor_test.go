package messaging

import (
	"context"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestJanitor: lag counts what the forwarder has not acknowledged, pruning
// deletes only acknowledged rows older than the cut-off, and after the
// table was emptied new rows are still forwarded (offsets are never reused).
func TestJanitor(t *testing.T) {
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		ctx := context.Background()
		s := newSetup(t, cfg, config.RelayMemory)
		a := startInstance(t, s, "a")
		sessions := a.createSessions(t, 1, users...)
		a.sendAll(t, sessions, 10, users)
		a.hub.waitFor(t, 20*time.Second, "10 messages", func(evs []chat.Event) bool { n, _ := uniqueMessages(evs); return n >= 10 })
		j := &janitor{db: a.db.SQL, driver: a.db.Dialect.Name, m: newMetrics(), log: testLogger(t)}
		waitNoLag(t, j) // the last offset is written just after the hub got the event
		a.stop(t)

		// Five more that nobody forwards yet.
		for range 5 {
			if _, err := a.send(ctx, sessions[0], "bob", "later", users); err != nil {
				t.Fatal(err)
			}
		}
		rows, age, err := j.lag(ctx, OutboxTopic, forwarderGroup)
		if err != nil {
			t.Fatal(err)
		}
		if rows != 5 || age < 0 || age > time.Minute {
			t.Errorf("lag = %d rows, %s; want 5 rows, a few ms", rows, age)
		}
		if n, err := j.prune(ctx, OutboxTopic, forwarderGroup, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("prune of rows younger than the cut-off deleted %d (%v), want 0", n, err)
		}
		n, err := j.prune(ctx, OutboxTopic, forwarderGroup, time.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if n != 11 { // the session announcement and 10 messages
			t.Errorf("pruned %d rows, want 11", n)
		}
		if rows, _, _ := j.lag(ctx, OutboxTopic, forwarderGroup); rows != 5 {
			t.Errorf("after pruning, lag = %d rows, want the 5 unforwarded", rows)
		}

		b := startInstance(t, s, "b")
		b.hub.waitFor(t, 20*time.Second, "the 5 later messages", func(evs []chat.Event) bool { n, _ := uniqueMessages(evs); return n >= 5 })
		waitNoLag(t, j)
		if _, err := j.prune(ctx, OutboxTopic, forwarderGroup, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.send(ctx, sessions[0], "alice", "after an empty table", users); err != nil {
			t.Fatal(err)
		}
		b.hub.waitFor(t, 20*time.Second, "the message sent after the table was emptied", func(evs []chat.Event) bool {
			n, _ := uniqueMessages(evs)
			return n >= 6
		})
	})
}

func waitNoLag(t *testing.T, j *janitor) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, _, err := j.lag(context.Background(), OutboxTopic, forwarderGroup)
		if err == nil && rows == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag still %d rows (%v)", rows, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
