package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chat-service/chat/cmd/internal/procstat"
	"golang.org/x/sync/errgroup"
)

// parallel runs f(0..n-1) with at most c at a time; the first error stops it.
func parallel(ctx context.Context, n, c int, f func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, c))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return f(ctx, i) })
	}
	return g.Wait()
}

// load is the set of connections of a shape and what they sent and
// received. Only messages sent inside the measured window count.
type load struct {
	lat       *latencies // send → MESSAGE
	acceptLat *latencies // send → RECEIPT
	sent      atomic.Int64
	accepted  atomic.Int64
	rejected  atomic.Int64
	delivered atomic.Int64
	errors    atomic.Int64
	mu        sync.Mutex
	conns     []*conn
	byInst    map[int]int // connections opened per instance of the target
	poll      *poller
	stopping  atomic.Bool
	from      atomic.Int64 // unix ns: messages sent from then on are counted...
	until     atomic.Int64 // ...until then
	clientCPU float64      // cores this process used while measuring
	reported  atomic.Int64 // connection errors written to stderr
	flights   *flights     // fanout -window: messages in flight; nil when paced
}

func newLoad() *load {
	return &load{lat: newLatencies(1 << 20), acceptLat: newLatencies(1 << 18)}
}

// open dials n connections (connection i with credential cred(i), to the
// instance instanceOf(i) picks), subscribes each to dests(i) and hands it
// to the poller, which reads it from then on; it returns the new
// connections in order.
func (l *load) open(ctx context.Context, o options, t *target, n int, cred func(int) string, dests func(int) []string) ([]*conn, error) {
	l.mu.Lock()
	if l.poll == nil {
		p, err := newPoller(runtime.NumCPU())
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.poll = p
	}
	l.mu.Unlock()
	out := make([]*conn, n)
	err := parallel(ctx, n, o.concurrency, func(ctx context.Context, i int) error {
		c, err := t.dial(ctx, i, cred(i))
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		for _, d := range dests(i) {
			if d == "" {
				continue
			}
			if err := c.subscribe(d); err != nil {
				c.close()
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
		c.onMessage, c.onReceipt, c.onEnd = l.onMessage, l.onReceipt, l.onEnd
		out[i] = c
		return l.poll.add(c)
	})
	l.mu.Lock()
	if l.byInst == nil {
		l.byInst = map[int]int{}
	}
	for i, c := range out {
		if c != nil {
			l.conns = append(l.conns, c)
			l.byInst[instanceOf(i, len(t.instances))]++
		}
	}
	l.mu.Unlock()
	return out, err
}

// onEnd counts a connection that ended before the load closed it; a
// normal close (1000, 1001) is not an error.
func (l *load) onEnd(err error) {
	if l.stopping.Load() || isNormalClose(err) {
		return
	}
	l.errors.Add(1)
	if l.reported.Add(1) <= 5 {
		fmt.Fprintln(os.Stderr, "connection ended:", err)
	}
}

func (l *load) onMessage(frame, body []byte) {
	at, ok := sentAt(body)
	if !ok {
		// The service reports a refused SEND on /user/queue/errors, with the
		// SEND's receipt as receipt-id when it had one.
		if bytes.HasPrefix(headerValue(frame, "content-type"), []byte("application/problem+json")) {
			if at, ok := receiptTime(headerValue(frame, "receipt-id")); !ok || l.inWindow(at) {
				l.rejected.Add(1)
			}
		}
		return
	}
	if l.flights != nil {
		l.flights.delivered(at.UnixNano())
	}
	if !l.inWindow(at) {
		return // sent during the warm-up or after the window
	}
	l.delivered.Add(1)
	l.lat.add(time.Since(at))
}

func (l *load) onReceipt(id []byte) {
	at, ok := receiptTime(id)
	if !ok || !l.inWindow(at) {
		return
	}
	l.accepted.Add(1)
	l.acceptLat.add(time.Since(at))
}

// inWindow reports whether a message sent at t belongs to the measured window.
func (l *load) inWindow(t time.Time) bool {
	from, until := l.from.Load(), l.until.Load()
	n := t.UnixNano()
	return from != 0 && n >= from && (until == 0 || n < until)
}

func (l *load) close() {
	l.stopping.Store(true)
	if l.poll != nil {
		l.poll.stop()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.close()
	}
}

// sender is one connection's part of the traffic: messages to s at rate per
// second, the first after delay.
type sender struct {
	c     *conn
	s     session
	rate  float64
	delay time.Duration
}

// sendLoop sends on a fixed schedule (a late send is made at once, not
// skipped) until stop, bounded to an hour's worth of messages; it counts
// what it sends inside the window.
func (l *load) sendLoop(t *target, o options, sd sender, stop <-chan struct{}) {
	every := time.Duration(float64(time.Second) / sd.rate)
	next := time.Now().Add(sd.delay)
	timer := time.NewTimer(sd.delay)
	defer timer.Stop()
	dest := t.sendDest(sd.s)
	limit := int(math.Ceil(sd.rate*3600)) + 1
	for range limit {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		body, at := stamp(sd.s.id, o.pad)
		receipt := ""
		if o.receipts {
			receipt = receiptFor(at)
		}
		if err := sd.c.send(dest, body, receipt); err != nil {
			l.onEnd(fmt.Errorf("send: %w", err))
			return
		}
		if l.inWindow(at) {
			l.sent.Add(1)
		}
		next = next.Add(every)
		timer.Reset(max(0, time.Until(next)))
	}
}

// spread is connection i's first-send delay: the n senders' first sends
// are spread evenly over one period of rate, so that they do not all send
// at once.
func spread(i, n int, rate float64) time.Duration {
	if n <= 0 || rate <= 0 {
		return 0
	}
	return time.Duration(float64(i%n) / float64(n) * float64(time.Second) / rate)
}

// measured is what a window of load measured besides the counters.
type measured struct {
	window      time.Duration
	serverCPU   time.Duration   // every instance's
	instanceCPU []time.Duration // each instance's
	serverKnown bool
	machineCPU  time.Duration // every process's, 0 when unknown
}

// measure starts the senders, lets them warm up, then measures for
// o.duration: the server's CPU over the window, the messages sent in it
// (and, after o.drain, the deliveries of those).
func (l *load) measure(o options, t *target, senders []sender) measured {
	stop := make(chan struct{})
	for _, sd := range senders {
		if l.flights != nil {
			go l.windowLoop(t, o, sd, stop)
		} else {
			go l.sendLoop(t, o, sd, stop)
		}
	}
	time.Sleep(o.warmup) // the warm-up is a fixed time, not a wait for an event
	cpu0, each0, ok0 := t.cpu()
	self0, _ := procstat.ProcessCPU(os.Getpid())
	all0, errAll0 := procstat.MachineCPU("/proc/stat")
	t0 := time.Now()
	l.from.Store(t0.UnixNano())
	time.Sleep(o.duration) // as above: the measured window
	end := time.Now()
	l.until.Store(end.UnixNano())
	time.Sleep(50 * time.Millisecond) // sends stamped inside the window finish counting
	close(stop)
	cpu1, each1, ok1 := t.cpu()
	self1, _ := procstat.ProcessCPU(os.Getpid())
	all1, errAll1 := procstat.MachineCPU("/proc/stat")
	window := end.Sub(t0)
	l.clientCPU = (self1 - self0).Seconds() / window.Seconds()
	time.Sleep(o.drain) // messages sent in the window and still in flight count
	m := measured{window: window, serverCPU: cpu1 - cpu0, serverKnown: ok0 && ok1}
	if m.serverKnown {
		m.instanceCPU = make([]time.Duration, len(each1))
		for i := range each1 {
			m.instanceCPU[i] = each1[i] - each0[i]
		}
	}
	if errAll0 == nil && errAll1 == nil {
		m.machineCPU = all1 - all0
	}
	return m
}

// fill copies the counters into r; each message sent is expected fanout times.
func (l *load) fill(r *result, m measured, fanout int64, t *target) {
	r.Sent, r.Accepted, r.Rejected, r.Delivered = l.sent.Load(), l.accepted.Load(), l.rejected.Load(), l.delivered.Load()
	r.Expected = r.Sent * fanout
	r.MeasuredSeconds = m.window.Seconds()
	r.ServerMeasured, r.ServerCPUSeconds = m.serverKnown, m.serverCPU.Seconds()
	r.MachineCPU = m.machineCPU.Seconds() / m.window.Seconds()
	ps := l.lat.percentiles(0.5, 0.99, 1)
	r.P50ms, r.P99ms, r.MaxMs = ms(ps[0]), ms(ps[1]), ms(ps[2])
	if l.acceptLat.count.Load() > 0 {
		as := l.acceptLat.percentiles(0.5, 0.99)
		r.AcceptP50ms, r.AcceptP99ms = ms(as[0]), ms(as[1])
	}
	r.Errors = l.errors.Load()
	r.ClientCPU = l.clientCPU
	var mem []procMemory
	if t.measured() {
		r.ServerRSS, r.ServerThreads, mem, _ = t.memory() // zero when unreadable
	}
	r.Instances = l.instances(t, m.instanceCPU, m.window, mem)
}

// instances is the per-instance part of a result (see instanceResults),
// with the connections this load opened to each.
func (l *load) instances(t *target, cpu []time.Duration, window time.Duration, mem []procMemory) []instanceResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return instanceResults(t, l.byInst, cpu, window, mem)
}

// instanceResults is the per-instance part of a result when the target has
// more than one: conns[i] connections opened to instance i, its CPU over
// window and its memory when known (cpu and mem in instance order, or nil).
func instanceResults(t *target, conns map[int]int, cpu []time.Duration, window time.Duration, mem []procMemory) []instanceResult {
	if len(t.instances) < 2 {
		return nil
	}
	out := make([]instanceResult, len(t.instances))
	for i, in := range t.instances {
		out[i] = instanceResult{URL: in.base, PID: in.pid, Connections: conns[i]}
		if i < len(cpu) {
			out[i].CPUSeconds = cpu[i].Seconds()
			if window > 0 {
				out[i].CPUCores = cpu[i].Seconds() / window.Seconds()
			}
		}
		if i < len(mem) {
			out[i].RSS, out[i].Threads = mem[i].rss, mem[i].threads
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
