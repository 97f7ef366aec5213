package chat_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/profiles"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

// recorder is chat.Events keeping what would have gone into the outbox.
type recorder struct {
	mu  sync.Mutex
	evs []chat.Event
}

func (r *recorder) Stored(_ context.Context, _ *sql.Tx, evs ...chat.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, evs...)
	return nil
}

func (r *recorder) Transient(context.Context, chat.Event) error { return nil }

func (r *recorder) last(t *testing.T, typ string) chat.Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.evs) - 1; i >= 0; i-- {
		if r.evs[i].Type == typ {
			return r.evs[i]
		}
	}
	t.Fatalf("no %s event", typ)
	return chat.Event{}
}

// everyone is a profiles.Directory that knows no profiles and allows all pairs.
type everyone struct{}

func (everyone) Lookup(context.Context, []string) map[string]profiles.Profile { return nil }
func (everyone) CanChat(context.Context, string, string) bool                 { return true }

// TestStaleParticipantsAreNotUsedForRouting: two services over one
// database stand for two instances, the second never told of a change (its
// relay is late). A message it stores after a removal must not be routed to
// the removed user's /user/queue/messages, and one after an addition must
// reach the added user's: the store reports the membership version under
// the session's lock, and a stale list is read again in the transaction.
func TestStaleParticipantsAreNotUsedForRouting(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		for _, gc := range []struct {
			name string
			cfg  config.GroupCommit
		}{
			{"single", config.GroupCommit{}},
			{"group_commit", config.GroupCommit{MaxBatch: 16, MaxWait: time.Millisecond}},
		} {
			t.Run(gc.name, func(t *testing.T) {
				ctx := t.Context()
				db, err := store.Open(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
				st := store.New(db)
				newSvc := func(ev chat.Events) *chat.Service {
					s, err := chat.NewService(chat.Deps{
						Store: st, Events: ev, Profiles: everyone{}, GroupCommit: gc.cfg,
						Limits:   config.Limits{MaxParticipants: 10, MaxMessageBytes: 4096, RatePerSecond: 1000, Burst: 1000, ReadRatePerSecond: 1000},
						Recovery: config.Recovery{MaxMessages: 100},
					})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(s.Close)
					return s
				}
				evA, evB := &recorder{}, &recorder{}
				a, b := newSvc(evA), newSvc(evB)
				title := "stale"
				sess, _, err := a.CreateSession(ctx, "alice", chat.CreateSessionRequest{Participants: []string{"bob", "carol"}, Title: &title})
				if err != nil {
					t.Fatal(err)
				}
				send := func(content string) []string {
					t.Helper()
					if _, _, err := b.Send(ctx, "alice", chat.SendRequest{SessionID: sess.ID, Content: content}); err != nil {
						t.Fatal(err)
					}
					ps := slices.Clone(evB.last(t, chat.EventMessage).Participants)
					slices.Sort(ps)
					return ps
				}
				if got := send("warms b's cache"); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
					t.Fatalf("before: routed to %v", got)
				}
				if err := a.RemoveParticipant(ctx, "alice", sess.ID, "bob"); err != nil {
					t.Fatal(err)
				}
				if got := send("after the removal"); !slices.Equal(got, []string{"alice", "carol"}) {
					t.Fatalf("after removing bob: routed to %v", got)
				}
				if _, err := a.AddParticipants(ctx, "alice", sess.ID, chat.AddParticipantsRequest{UserIDs: []string{"dave"}}); err != nil {
					t.Fatal(err)
				}
				if got := send("after the addition"); !slices.Equal(got, []string{"alice", "carol", "dave"}) {
					t.Fatalf("after adding dave: routed to %v", got)
				}
				// And bob cannot send, even through b's stale cache.
				if _, _, err := b.Send(ctx, "bob", chat.SendRequest{SessionID: sess.ID, Content: "still here?"}); err == nil {
					t.Fatal("a removed user sent through a stale cache")
				}
				ev := evA.last(t, chat.EventMembers)
				if !slices.Equal(ev.Added, []string{"dave"}) || len(ev.Removed) != 0 || ev.By != "alice" {
					t.Fatalf("members event: %+v", ev)
				}
			})
		}
	})
}
