package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

// TestLastSeqs: the last seq of each session asked about that exists,
// across more ids than one query takes.
func TestLastSeqs(t *testing.T) {
	t.Parallel()
	storetest.Backends(t, func(t *testing.T, cfg config.Storage) {
		t.Parallel()
		s := store.New(open(t, cfg))
		ctx := context.Background()
		var ids []string
		for i := range 3 {
			id := uuid.Must(uuid.NewV7()).String()
			if _, _, err := s.CreateSession(ctx, chat.NewSession{ID: id, Type: chat.TypeGroup, CreatorID: "alice",
				Participants: []string{"alice", "bob"}, CreatedAt: chat.Now()}, nil); err != nil {
				t.Fatal(err)
			}
			for range i {
				if _, _, err := s.AppendMessage(ctx, chat.NewMessage{ID: uuid.Must(uuid.NewV7()).String(), SessionID: id,
					SenderID: "alice", Content: "x", CreatedAt: chat.Now()}, nil); err != nil {
					t.Fatal(err)
				}
			}
			ids = append(ids, id)
		}
		asked := append([]string{}, ids...)
		for range 600 { // unknown ids: past one query's chunk
			asked = append(asked, uuid.Must(uuid.NewV7()).String())
		}
		asked = append(asked, ids[2])
		got, err := s.LastSeqs(ctx, asked)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[ids[0]] != 0 || got[ids[1]] != 1 || got[ids[2]] != 2 {
			t.Fatalf("LastSeqs = %v, want %s:0 %s:1 %s:2", got, ids[0], ids[1], ids[2])
		}
	})
}
