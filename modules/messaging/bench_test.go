package messaging

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/chat"
)

// End-to-end store → hub benchmarks: a message is appended with its outbox
// event in one transaction on instance A, forwarded to the relay and handed
// to the hub of the last instance (B with RabbitMQ, A in-process).
//
//	go test ./modules/messaging -run '^$' -bench 'BenchmarkDelivery' -benchtime 2000x
//
// Throughput: b.N messages from 16 concurrent senders (one session each).
// Latency: b.N messages paced at 500 msg/s (and at 20 msg/s, low load); p50 and p99 from the start of
// the send to the hub's Deliver, and commit-p50/commit-p99 from the send's
// return (its commit) to Deliver (use -benchtime 2500x for five seconds).

const benchSenders = 16

func BenchmarkDelivery(b *testing.B) {
	for _, tc := range deliveryCases {
		if tc.name == "postgres_memory" {
			continue
		}
		b.Run(tc.name+"/throughput", func(b *testing.B) { benchThroughput(b, tc.name) })
		b.Run(tc.name+"/latency_500_per_s", func(b *testing.B) { benchLatency(b, tc.name, 500) })
		b.Run(tc.name+"/latency_20_per_s", func(b *testing.B) { benchLatency(b, tc.name, 20) })
	}
	// Relay events published persistent (relay.amqp.persistent): the cost
	// of surviving a RabbitMQ restart without a resync.
	const persistent = "postgres_amqp" + persistentSuffix
	b.Run(persistent+"/throughput", func(b *testing.B) { benchThroughput(b, persistent) })
	b.Run(persistent+"/latency_500_per_s", func(b *testing.B) { benchLatency(b, persistent, 500) })
	b.Run(persistent+"/latency_20_per_s", func(b *testing.B) { benchLatency(b, persistent, 20) })
}

// persistentSuffix on a case name turns relay.amqp.persistent on.
const persistentSuffix = "_persistent"

// benchEnv starts the instances of a delivery case; the last one's hub is
// the one measured.
func benchEnv(b *testing.B, name string) (sender, receiver *instance, hub *timingHub) {
	base, persistent := strings.CutSuffix(name, persistentSuffix)
	for _, tc := range deliveryCases {
		if tc.name != base {
			continue
		}
		s := newSetup(b, tc.storage(b), tc.relay)
		s.relay.AMQP.Persistent = persistent
		s.outbox.PollInterval = 50 * time.Millisecond // the shipped default: commits wake the forwarder sooner
		var ins []*instance
		for i := range tc.instances {
			ins = append(ins, startInstance(b, s, string(rune('a'+i))))
		}
		hub = &timingHub{at: map[string]time.Time{}, done: make(chan struct{})}
		last := ins[len(ins)-1]
		// Swap the measured instance's hub for a timing one.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := last.m.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		if err := last.m.Start(ctx, hub, noSender{}); err != nil {
			b.Fatal(err)
		}
		return ins[0], last, hub
	}
	b.Fatalf("no case %s", name)
	return nil, nil, nil
}

func benchThroughput(b *testing.B, name string) {
	a, _, hub := benchEnv(b, name)
	sessions := a.createSessions(b, benchSenders, users...)
	hub.expect(b.N)
	per := make([]int, benchSenders)
	for i := range b.N {
		per[i%benchSenders]++
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, id := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per[i] {
				if _, err := a.send(context.Background(), id, "alice", fmt.Sprintf("t %d %d", i, j), users); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	sent := time.Since(start)
	hub.wait(b, 2*time.Minute)
	total := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/sent.Seconds(), "stored/s")
	b.ReportMetric(float64(b.N)/total.Seconds(), "delivered/s")
	b.ReportMetric(0, "ns/op")
}

func benchLatency(b *testing.B, name string, perSecond int) {
	a, _, hub := benchEnv(b, name)
	sessions := a.createSessions(b, benchSenders, users...)
	hub.expect(b.N)
	sentAt, committedAt := make([]time.Time, b.N), make([]time.Time, b.N)
	work := make(chan int)
	var wg sync.WaitGroup
	for w := range benchSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				sentAt[i] = time.Now()
				if _, err := a.send(context.Background(), sessions[w], "alice", "l "+strconv.Itoa(i), users); err != nil {
					b.Error(err)
				}
				committedAt[i] = time.Now()
			}
		}()
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	for i := range b.N {
		<-tick.C
		work <- i
	}
	tick.Stop()
	close(work)
	wg.Wait()
	hub.wait(b, 2*time.Minute)
	b.StopTimer()
	lat := make([]time.Duration, 0, b.N)
	fromCommit := make([]time.Duration, 0, b.N)
	for content, at := range hub.snapshot() {
		i, err := strconv.Atoi(strings.TrimPrefix(content, "l "))
		if err != nil || i >= len(sentAt) {
			continue
		}
		lat = append(lat, at.Sub(sentAt[i]))
		// Deliver may run before send returns: the commit's reply and the
		// event race. That counts as no delay.
		fromCommit = append(fromCommit, max(at.Sub(committedAt[i]), 0))
	}
	slices.Sort(lat)
	slices.Sort(fromCommit)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(l []time.Duration, p float64) float64 { return ms(l[int(p*float64(len(l)-1))]) }
	b.ReportMetric(pct(lat, 0.50), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(pct(fromCommit, 0.50), "commit-p50-ms")
	b.ReportMetric(pct(fromCommit, 0.99), "commit-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// timingHub records when each message (by content) first arrived.
type timingHub struct {
	mu    sync.Mutex
	at    map[string]time.Time
	want  atomic.Int64
	done  chan struct{}
	fired bool
}

func (h *timingHub) expect(n int) { h.want.Store(int64(n)) }

func (h *timingHub) Deliver(ev chat.Event) {
	if ev.Type != chat.EventMessage || ev.Message == nil {
		return
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.at[ev.Message.Content]; !ok {
		h.at[ev.Message.Content] = now
	}
	if !h.fired && int64(len(h.at)) >= h.want.Load() && h.want.Load() > 0 {
		h.fired = true
		close(h.done)
	}
}

func (h *timingHub) wait(b *testing.B, timeout time.Duration) {
	select {
	case <-h.done:
	case <-time.After(timeout):
		h.mu.Lock()
		n := len(h.at)
		h.mu.Unlock()
		b.Fatalf("hub got %d of %d messages in %s", n, h.want.Load(), timeout)
	}
}

func (h *timingHub) snapshot() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]time.Time, len(h.at))
	for k, v := range h.at {
		out[k] = v
	}
	return out
}
