package store_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/store"
	"github.com/chat-service/chat/modules/store/storetest"
)

const benchWriters = 16

func benchSession(b *testing.B, s chat.Store, users ...string) string {
	b.Helper()
	sess, _, err := s.CreateSession(context.Background(), chat.NewSession{ID: uuid.Must(uuid.NewV7()).String(),
		Type: chat.TypeGroup, CreatorID: users[0], Participants: users, CreatedAt: chat.Now()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return sess.ID
}

// BenchmarkAppendMessage sends from 16 goroutines, all to one session (sends
// serialize on its row) or each to its own.
func BenchmarkAppendMessage(b *testing.B) {
	for _, be := range storetest.AllBackends() {
		b.Run(be.Name, func(b *testing.B) {
			s := store.New(open(b, be.New(b)))
			shared := benchSession(b, s, "alice", "bob")
			for _, mode := range []string{"one_session", "own_sessions"} {
				b.Run(mode, func(b *testing.B) {
					var n atomic.Int64
					b.ReportAllocs()
					b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						sid := shared
						if mode == "own_sessions" {
							sid = benchSession(b, s, "alice", "bob")
						}
						ctx := context.Background()
						for pb.Next() {
							i := n.Add(1)
							_, _, err := s.AppendMessage(ctx, chat.NewMessage{ID: uuid.Must(uuid.NewV7()).String(),
								SessionID: sid, SenderID: "alice", ClientMessageID: fmt.Sprint("c-", i),
								Content: "hello there", CreatedAt: chat.Now()}, nil)
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// BenchmarkMessages reads a page of 50 from a 1000-message history.
func BenchmarkMessages(b *testing.B) {
	for _, be := range storetest.AllBackends() {
		b.Run(be.Name, func(b *testing.B) {
			s := store.New(open(b, be.New(b)))
			sid := benchSession(b, s, "alice", "bob")
			ctx := context.Background()
			for i := range 1000 {
				if _, _, err := s.AppendMessage(ctx, chat.NewMessage{ID: uuid.Must(uuid.NewV7()).String(),
					SessionID: sid, SenderID: []string{"alice", "bob"}[i%2], Content: "hello there",
					CreatedAt: chat.Now()}, nil); err != nil {
					b.Fatal(err)
				}
			}
			for _, tc := range []struct {
				name string
				q    func(i int64) chat.HistoryQuery
			}{
				{"latest", func(int64) chat.HistoryQuery { return chat.HistoryQuery{Limit: 50} }},
				{"before", func(i int64) chat.HistoryQuery {
					before := 51 + i%900
					return chat.HistoryQuery{Limit: 50, BeforeSeq: &before}
				}},
			} {
				b.Run(tc.name, func(b *testing.B) {
					b.ReportAllocs()
					var i int64
					for b.Loop() {
						i++
						list, _, err := s.Messages(ctx, sid, "bob", tc.q(i))
						if err != nil || len(list) != 50 {
							b.Fatalf("Messages: %d, %v", len(list), err)
						}
					}
				})
			}
		})
	}
}
