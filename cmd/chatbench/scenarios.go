package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chat-service/chat/modules/stomp"
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

func tokens(ctx context.Context, t *target, users []string, c int) ([]string, error) {
	out := make([]string, len(users))
	err := parallel(ctx, len(users), c, func(ctx context.Context, i int) error {
		tok, err := t.token(ctx, users[i])
		out[i] = tok
		return err
	})
	return out, err
}

// load is the set of connections of a scenario and what they received.
type load struct {
	lat       *latencies
	delivered atomic.Int64
	errors    atomic.Int64
	conns     []*conn
	poll      *poller
	stopping  atomic.Bool
	from      atomic.Int64 // unix ns: messages sent from then on are counted...
	until     atomic.Int64 // ...until then
	clientCPU float64      // cores this process used while measuring
}

// open dials n connections (token of connection i: tok(i)), subscribes each
// to dest(i) and hands it to the poller, which reads it from then on.
func (l *load) open(ctx context.Context, o options, n int, tok func(int) string, dest func(int) string) error {
	p, err := newPoller(runtime.NumCPU())
	if err != nil {
		return err
	}
	l.poll = p
	l.conns = make([]*conn, n)
	return parallel(ctx, n, o.concurrency, func(ctx context.Context, i int) error {
		c, err := dialSTOMP(ctx, o.url, tok(i))
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if d := dest(i); d != "" {
			if err := c.subscribe(d); err != nil {
				c.close()
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
		c.onMessage, c.onEnd = l.onMessage, l.onEnd
		l.conns[i] = c
		return l.poll.add(c)
	})
}

// onEnd counts a connection that ended before the load closed it; a
// normal close (1000, 1001) is not an error.
func (l *load) onEnd(err error) {
	if l.stopping.Load() || isNormalClose(err) {
		return
	}
	l.errors.Add(1)
	fmt.Fprintln(os.Stderr, "connection ended:", err)
}

func (l *load) onMessage(frame []byte) {
	from := l.from.Load()
	if from == 0 {
		return
	}
	at, ok := sentAt(frame)
	if !ok || !l.inWindow(at) {
		return // sent during the warm-up or after the window
	}
	l.delivered.Add(1)
	l.lat.add(time.Since(at))
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
	for _, c := range l.conns {
		if c != nil {
			c.close()
		}
	}
}

// sendLoop sends from c to session at rate per second until stop, on a
// fixed schedule (a late send is made at once, not skipped), bounded to an
// hour's worth; it counts what it sends while measuring.
func sendLoop(c *conn, session string, rate float64, pad int, stop <-chan struct{}, l *load, count *atomic.Int64) {
	every := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	limit := int(math.Ceil(rate*3600)) + 1
	for range limit {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		body, at := stamp(session, pad)
		if err := c.send(stomp.AppSend, body); err != nil {
			l.errors.Add(1)
			return
		}
		if l.inWindow(at) {
			count.Add(1)
		}
		next = next.Add(every)
		timer.Reset(max(0, time.Until(next)))
	}
}

// measure runs the warm-up, then the measured window, with server CPU.
func measure(o options, l *load, start func(stop <-chan struct{})) (sentWindow time.Duration, cpu float64) {
	stop := make(chan struct{})
	start(stop)
	time.Sleep(o.warmup) // the warm-up is a fixed time, not a wait for an event
	l.lat = newLatencies(1 << 20)
	cpu0, _ := procCPU(o.pid) // 0 without a pid
	self0, _ := procCPU(os.Getpid())
	t0 := time.Now()
	l.from.Store(t0.UnixNano())
	time.Sleep(o.duration) // as above: the measured window
	end := time.Now()
	l.until.Store(end.UnixNano())
	window := end.Sub(t0)
	time.Sleep(50 * time.Millisecond) // sends stamped inside the window finish counting
	close(stop)
	cpu1, _ := procCPU(o.pid)
	self1, _ := procCPU(os.Getpid())
	l.clientCPU = (self1 - self0).Seconds() / window.Seconds()
	time.Sleep(2 * time.Second) // messages sent in the window and still in flight count
	return window, (cpu1 - cpu0).Seconds() / window.Seconds()
}

func (l *load) fill(r *result, o options, window time.Duration, sent int64, fanout int64) {
	r.Sent, r.Delivered, r.Expected = sent, l.delivered.Load(), sent*fanout
	r.MeasuredSeconds = window.Seconds()
	r.DeliveriesPerS = float64(r.Delivered) / window.Seconds()
	ps := l.lat.percentiles(0.5, 0.99, 1)
	r.P50ms, r.P99ms, r.MaxMs = ms(ps[0]), ms(ps[1]), ms(ps[2])
	r.Errors = l.errors.Load()
	r.ClientCPU = l.clientCPU
	if o.pid > 0 {
		r.ServerRSS, r.ServerThreads, _ = procStatus(o.pid) // zero when unreadable
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fanout: one group session, o.conns subscribed connections spread over
// o.users users, o.rate messages/s in total from a few sender connections.
func fanout(ctx context.Context, o options) (result, error) {
	t := newTarget(o.url)
	setup := time.Now()
	users := make([]string, o.users)
	for i := range users {
		users[i] = fmt.Sprintf("fan-%d-%d", time.Now().Unix(), i)
	}
	toks, err := tokens(ctx, t, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	session, err := t.session(ctx, toks[0], users[1:])
	if err != nil {
		return result{}, err
	}
	l := &load{lat: newLatencies(1 << 20)}
	defer l.close()
	dest := stomp.TopicSessionPrefix + session
	if err := l.open(ctx, o, o.conns, func(i int) string { return toks[i%len(toks)] }, func(int) string { return dest }); err != nil {
		return result{}, err
	}
	// Senders: a per-user rate limit (20/s) means several users share the load.
	nsend := min(len(users), int(math.Ceil(o.rate/15)))
	senders := &load{}
	if err := senders.open(ctx, o, nsend, func(i int) string { return toks[i] }, func(int) string { return "" }); err != nil {
		return result{}, err
	}
	defer senders.close()
	res := result{Connections: o.conns + nsend, Sessions: 1, SendRate: o.rate, SetupSeconds: time.Since(setup).Seconds()}
	var sent atomic.Int64
	window, cpu := measure(o, l, func(stop <-chan struct{}) {
		for _, c := range senders.conns {
			go sendLoop(c, session, o.rate/float64(nsend), o.pad, stop, l, &sent)
		}
	})
	l.fill(&res, o, window, sent.Load(), int64(o.conns))
	res.ServerCPU = cpu
	res.Errors += senders.errors.Load()
	return res, nil
}

// direct: o.conns/2 direct sessions, one connection per user subscribed to
// its session's topic, each sending o.rate messages/s.
func direct(ctx context.Context, o options) (result, error) {
	t := newTarget(o.url)
	setup := time.Now()
	pairs := o.conns / 2
	users := make([]string, 2*pairs)
	stampPrefix := time.Now().Unix()
	for i := range pairs {
		users[2*i] = fmt.Sprintf("dir-%d-a%d", stampPrefix, i)
		users[2*i+1] = fmt.Sprintf("dir-%d-b%d", stampPrefix, i)
	}
	toks, err := tokens(ctx, t, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	sessions := make([]string, pairs)
	if err := parallel(ctx, pairs, o.concurrency, func(ctx context.Context, i int) error {
		id, err := t.session(ctx, toks[2*i], []string{users[2*i+1]})
		sessions[i] = id
		return err
	}); err != nil {
		return result{}, err
	}
	l := &load{lat: newLatencies(1 << 20)}
	defer l.close()
	if err := l.open(ctx, o, 2*pairs, func(i int) string { return toks[i] },
		func(i int) string { return stomp.TopicSessionPrefix + sessions[i/2] }); err != nil {
		return result{}, err
	}
	res := result{Connections: 2 * pairs, Sessions: pairs, SendRate: o.rate * float64(2*pairs), SetupSeconds: time.Since(setup).Seconds()}
	var sent atomic.Int64
	window, cpu := measure(o, l, func(stop <-chan struct{}) {
		for i, c := range l.conns {
			go func() {
				// spread the first sends over one period
				select {
				case <-time.After(time.Duration(float64(i%100) / 100 * float64(time.Second) / o.rate)):
				case <-stop:
					return
				}
				sendLoop(c, sessions[i/2], o.rate, o.pad, stop, l, &sent)
			}()
		}
	})
	l.fill(&res, o, window, sent.Load(), 2) // both members are subscribed to the topic
	res.ServerCPU = cpu
	return res, nil
}

// idle: o.conns connected connections, each subscribed to its user's queue,
// doing nothing; the server's RSS before and after.
func idle(ctx context.Context, o options) (result, error) {
	if o.pid <= 0 {
		return result{}, fmt.Errorf("idle measures the server's memory: give -pid with -url")
	}
	t := newTarget(o.url)
	setup := time.Now()
	users := make([]string, o.conns)
	for i := range users {
		users[i] = fmt.Sprintf("idle-%d-%d", time.Now().Unix(), i)
	}
	toks, err := tokens(ctx, t, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	t.http.CloseIdleConnections()
	time.Sleep(o.settle) // let the server settle before the baseline
	base, _, err := procStatus(o.pid)
	if err != nil {
		return result{}, err
	}
	l := &load{}
	defer l.close()
	if err := l.open(ctx, o, o.conns, func(i int) string { return toks[i] }, func(int) string { return stomp.QueueMessages }); err != nil {
		return result{}, err
	}
	time.Sleep(o.settle) // idle: nothing to wait for but the server settling
	rss, threads, err := procStatus(o.pid)
	if err != nil {
		return result{}, err
	}
	if o.hold > 0 {
		fmt.Fprintf(os.Stderr, "holding %d connections to %s (pid %d) for %s\n", o.conns, o.url, o.pid, o.hold)
		time.Sleep(min(o.hold, time.Hour)) // bounded: inspection time asked for
	}
	return result{
		Connections: o.conns, ServerRSS: rss, BaseRSS: base, RSSPerConn: (rss - base) / int64(o.conns),
		ServerThreads: threads, SetupSeconds: time.Since(setup).Seconds(), Errors: l.errors.Load(),
	}, nil
}
