package rest_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
	"github.com/chat-service/chat/modules/store/storetest"
)

// benchApp starts the whole service on a backend with a rate budget that
// does not get in the way of measuring.
func benchApp(b *testing.B, storage func(testing.TB) config.Storage) *platformtest.App {
	cfg := platformtest.Config(b, storage(b))
	cfg.Limits.RatePerSecond, cfg.Limits.Burst = 1e6, 1e6
	cfg.Storage.MaxOpenConns = 16
	cfg.Log.Level = "error"
	a := platformtest.Start(b, cfg)
	a.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return a
}

var benchBackends = []struct {
	name    string
	storage func(testing.TB) config.Storage
}{{"sqlite", storetest.NewSQLite}, {"postgres", storetest.NewPostgres}}

// BenchmarkSend measures POST /api/chat/sessions/{id}/messages over
// loopback HTTP through to commit (outbox row included), 16 concurrent
// senders each in a session of their own.
func BenchmarkSend(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			a := benchApp(b, be.storage)
			const senders = 16
			tokens := make([]string, senders)
			sids := make([]string, senders)
			for i := range senders {
				tokens[i] = platformtest.Token(b, fmt.Sprintf("sender%d", i))
				var s chat.Session
				a.Do("POST", "/api/chat/sessions", tokens[i], `{"participants":["reader"]}`).JSON(b, &s)
				sids[i] = s.ID
			}
			var next atomic.Int64
			b.SetParallelism((senders + 1) / 2) // GOMAXPROCS 2 here: 16 goroutines
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)-1) % senders
				for pb.Next() {
					res := a.Do("POST", "/api/chat/sessions/"+sids[i]+"/messages", tokens[i], `{"content":"benchmark message"}`)
					if res.Status != http.StatusCreated {
						b.Errorf("send: %d %s", res.Status, res.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		})
	}
}

// BenchmarkHistory measures GET .../messages pages of 50 from a session of
// 1,000 messages: the latest page and a page in the middle.
func BenchmarkHistory(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			a := benchApp(b, be.storage)
			tok := platformtest.Token(b, "alice")
			var s chat.Session
			a.Do("POST", "/api/chat/sessions", tok, `{"participants":["bob"]}`).JSON(b, &s)
			for i := 0; i < 1000; i++ {
				a.Do("POST", "/api/chat/sessions/"+s.ID+"/messages", tok, `{"content":"history message"}`)
			}
			for _, q := range []struct{ name, query string }{{"latest", ""}, {"before500", "?beforeSeq=500"}} {
				b.Run(q.name, func(b *testing.B) {
					lat := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						t0 := time.Now()
						res := a.Do("GET", "/api/chat/sessions/"+s.ID+"/messages"+q.query, tok, nil)
						lat = append(lat, time.Since(t0))
						if res.Status != 200 {
							b.Fatalf("history: %d", res.Status)
						}
					}
					sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				})
			}
		})
	}
}
