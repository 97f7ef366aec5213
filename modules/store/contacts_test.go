package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

func newSession(tb testing.TB, s *store.Store, users ...string) {
	tb.Helper()
	if _, _, err := s.CreateSession(context.Background(), chat.NewSession{ID: uuid.Must(uuid.NewV7()).String(),
		Type: chat.TypeGroup, CreatorID: users[0], Participants: users, CreatedAt: chat.Now()}, nil); err != nil {
		tb.Fatal(err)
	}
}

// TestContacts: who shares a session with a user, each once, never the
// user; among narrows the answer (presence asks about at most 100 ids).
func TestContacts(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		s := store.New(open(t, cfg))
		newSession(t, s, "alice", "bob")
		newSession(t, s, "alice", "bob", "carol")
		newSession(t, s, "dave", "erin")
		ctx := context.Background()
		for _, tc := range []struct {
			user  string
			among []string
			want  []string
		}{
			{"alice", nil, []string{"bob", "carol"}},
			{"carol", nil, []string{"alice", "bob"}},
			{"dave", nil, []string{"erin"}},
			{"nobody", nil, nil},
			{"alice", []string{"carol", "dave", "alice"}, []string{"carol"}},
			{"alice", []string{}, nil},
		} {
			got, err := s.Contacts(ctx, tc.user, tc.among)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Contacts(%s, %v) = %v, want %v", tc.user, tc.among, got, tc.want)
			}
		}
	})
}

// BenchmarkContacts500 is the read presence makes per change and instance:
// the contacts of a user with 500 direct sessions.
func BenchmarkContacts500(b *testing.B) {
	for _, be := range storetest.AllBackends() {
		b.Run(be.Name, func(b *testing.B) {
			s := store.New(open(b, be.New(b)))
			for i := range 500 {
				newSession(b, s, "hub", fmt.Sprintf("contact-%03d", i))
				newSession(b, s, fmt.Sprintf("contact-%03d", i), fmt.Sprintf("other-%03d", i))
			}
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				got, err := s.Contacts(ctx, "hub", nil)
				if err != nil || len(got) != 500 {
					b.Fatalf("%d contacts, %v", len(got), err)
				}
			}
		})
	}
}
