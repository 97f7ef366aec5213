package stomp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

// benchTransport feeds scripted frames and counts what the server writes,
// without parsing it: the benchmark measures the hub and the writer, not
// the fake.
type benchTransport struct {
	in       chan []byte
	closed   chan struct{}
	once     sync.Once
	receipts chan struct{}
	messages *sync.WaitGroup // Done for each MESSAGE
}

func (t *benchTransport) Read() ([]byte, error) {
	select {
	case b := <-t.in:
		return b, nil
	case <-t.closed:
		return nil, io.EOF
	}
}

func (t *benchTransport) Write(p []byte) error {
	switch {
	case bytes.HasPrefix(p, []byte("MESSAGE\n")):
		t.messages.Done()
	case bytes.HasPrefix(p, []byte("RECEIPT\n")):
		t.receipts <- struct{}{}
	}
	return nil
}

func (t *benchTransport) Ping() error { return nil }

func (t *benchTransport) Close(int, string) error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// BenchmarkFanout delivers one message event to n topic subscribers and
// waits until every writer has written its MESSAGE: the time per delivery
// is the hub's and the writers' share of a broadcast (queueing, waking the
// writer, encoding), without a socket.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			be := stomptest.NewBackend()
			o := testOptions(be, nil)
			o.Limits.MaxConnsPerUser = 0
			h, err := stomp.NewHub(o)
			if err != nil {
				b.Fatal(err)
			}
			be.SetHub(h)
			session := be.CreateSession("sender", "reader")
			var delivered, wg sync.WaitGroup
			ts := make([]*benchTransport, n)
			for i := range ts {
				t := &benchTransport{in: make(chan []byte, 2), closed: make(chan struct{}), receipts: make(chan struct{}, 1), messages: &delivered}
				ts[i] = t
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = h.Serve(context.Background(), t, stomp.ConnOptions{Transport: "bench"}) // ends at Shutdown
				}()
				t.in <- []byte("CONNECT\naccept-version:1.2\nhost:bench\nAuthorization:Bearer " + stomptest.Token("reader", time.Time{}) + "\n\n\x00")
				t.in <- []byte("SUBSCRIBE\nid:1\ndestination:" + stomp.TopicSessionPrefix + session + "\nreceipt:r\n\n\x00")
				<-t.receipts
			}
			content := strings.Repeat("x", 100)
			b.ResetTimer()
			for range b.N {
				delivered.Add(n)
				be.Publish(session, "sender", content)
				delivered.Wait() // every writer wrote; a lost delivery fails the run by its timeout
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(n)), "ns/delivery")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = h.Shutdown(ctx) // the benchmark is over
			wg.Wait()
		})
	}
}
