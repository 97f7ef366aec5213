package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"

	"github.com/chat-service/chat/cmd/internal/procstat"
)

// subscriptions are a member's destinations: its session's topic and, on
// the service, /user/queue/errors, where a refused SEND is reported.
func subscriptions(t *target, s session) []string { return []string{s.topic, t.errorsDest()} }

// pairs: o.sessions direct sessions; each participant has one connection
// subscribed to the session and sends o.rate messages/s to it. Both
// participants receive every message of their session.
func pairs(ctx context.Context, o options, t *target) (result, error) {
	return conversations(ctx, o, t, o.sessions, 2, o.rate)
}

// groups: o.sessions group sessions of o.members members, each member
// connected and subscribed; the session as a whole sends o.rate messages/s
// (each member its share). Every member receives every message.
func groups(ctx context.Context, o options, t *target) (result, error) {
	return conversations(ctx, o, t, o.sessions, o.members, o.rate/float64(o.members))
}

// conversations is n sessions of k members, each member sending perMember
// messages/s to its session.
func conversations(ctx context.Context, o options, t *target, n, k int, perMember float64) (result, error) {
	setup := time.Now()
	users := make([]string, n*k)
	for i := range users {
		users[i] = t.user(fmt.Sprintf("s%d", i/k), i%k)
	}
	creds, err := t.credentials(ctx, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	sessions := make([]session, n)
	if err := parallel(ctx, n, o.concurrency, func(ctx context.Context, i int) error {
		s, err := t.newSession(ctx, i, creds[i*k], users[i*k+1:(i+1)*k])
		sessions[i] = s
		return err
	}); err != nil {
		return result{}, err
	}
	l := newLoad()
	defer l.close()
	conns, err := l.open(ctx, o, t, n*k, func(i int) string { return creds[i] },
		func(i int) []string { return subscriptions(t, sessions[i/k]) })
	if err != nil {
		return result{}, err
	}
	senders := make([]sender, len(conns))
	for i, c := range conns {
		senders[i] = sender{c: c, s: sessions[i/k], rate: perMember, delay: spread(i, len(conns), perMember)}
	}
	r := result{Connections: n * k, Sessions: n, Members: k, SendRate: perMember * float64(n*k), SetupSeconds: time.Since(setup).Seconds()}
	m := l.measure(o, t, senders)
	l.fill(&r, m, int64(k), t)
	return r, nil
}

// fanoutSenders is how many connections share fanout's rate: on the
// service a user may send 20 messages/s (limits.rate_per_second), so
// several users send, at most 15/s each; the peer gets as many.
func fanoutSenders(rate float64, users int) int {
	return max(1, min(users, int(math.Ceil(rate/15))))
}

// fanout: one session of o.users users, o.conns subscribed connections
// spread over them, o.rate messages/s in total from a few sender
// connections that are not subscribed.
func fanout(ctx context.Context, o options, t *target) (result, error) {
	setup := time.Now()
	users := make([]string, o.users)
	for i := range users {
		users[i] = t.user("fan", i)
	}
	creds, err := t.credentials(ctx, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	others := users[1:]
	s, err := t.newSession(ctx, 0, creds[0], others)
	if err != nil {
		return result{}, err
	}
	l := newLoad()
	defer l.close()
	if _, err := l.open(ctx, o, t, o.conns, func(i int) string { return creds[i%len(creds)] },
		func(int) []string { return []string{s.topic} }); err != nil {
		return result{}, err
	}
	nsend := fanoutSenders(o.rate, len(users))
	if o.window > 0 {
		nsend = 1
		l.flights = newFlights(o.window, int64(o.conns))
	}
	conns, err := l.open(ctx, o, t, nsend, func(i int) string { return creds[i] },
		func(int) []string { return []string{t.errorsDest()} })
	if err != nil {
		return result{}, err
	}
	senders := make([]sender, nsend)
	for i, c := range conns {
		senders[i] = sender{c: c, s: s, rate: o.rate / float64(nsend), delay: spread(i, nsend, o.rate/float64(nsend))}
	}
	r := result{Connections: o.conns + nsend, Sessions: 1, Members: len(users), SendRate: o.rate, SetupSeconds: time.Since(setup).Seconds()}
	m := l.measure(o, t, senders)
	l.fill(&r, m, int64(o.conns), t)
	if l.flights != nil {
		r.Window, r.WindowStalls = o.window, l.flights.stall.Load()
		r.SendRate = float64(r.Sent) / r.MeasuredSeconds
	}
	return r, nil
}

// idle: o.conns connections, each subscribed once (on the service to its
// user's message queue, on the peer to a topic of its own), doing nothing;
// the server's RSS before and after.
func idle(ctx context.Context, o options, t *target) (result, error) {
	if !t.measured() {
		return result{}, fmt.Errorf("idle measures the server's memory: its process id is unknown")
	}
	setup := time.Now()
	users := make([]string, o.conns)
	for i := range users {
		users[i] = t.user("idle", i)
	}
	creds, err := t.credentials(ctx, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	t.closeIdle()
	time.Sleep(o.settle) // let the server settle before the baseline
	base, _, _, err := t.memory()
	if err != nil {
		return result{}, err
	}
	l := newLoad()
	defer l.close()
	if _, err := l.open(ctx, o, t, o.conns, func(i int) string { return creds[i] },
		func(i int) []string { return []string{t.ownDest(i)} }); err != nil {
		return result{}, err
	}
	time.Sleep(o.settle) // idle: nothing to wait for but the server settling
	rss, threads, mem, err := t.memory()
	if err != nil {
		return result{}, err
	}
	if o.hold > 0 {
		fmt.Fprintf(os.Stderr, "holding %d connections to %s for %s\n", o.conns, t.describe(), o.hold)
		time.Sleep(o.hold) // bounded (at most an hour): inspection time asked for
	}
	return result{
		Connections: o.conns, ServerRSS: rss, BaseRSS: base, ServerThreads: threads,
		SetupSeconds: time.Since(setup).Seconds(), Errors: l.errors.Load(),
		Instances: l.instances(t, nil, 0, mem),
	}, nil
}

// churn: o.conns workers each connect, subscribe to a destination of their
// own (with a receipt), disconnect (with a receipt) and close, again and
// again, for o.duration or o.count cycles in all, whichever comes first,
// paced to o.rate cycles/s in total when it is set. It reports cycles/s,
// the time of one cycle, the server's CPU per cycle and its RSS before and
// after (what a storm leaves behind).
func churn(ctx context.Context, o options, t *target) (result, error) {
	setup := time.Now()
	users := make([]string, o.users)
	for i := range users {
		users[i] = t.user("churn", i)
	}
	creds, err := t.credentials(ctx, users, o.concurrency)
	if err != nil {
		return result{}, err
	}
	t.closeIdle()
	var base int64
	if t.measured() {
		time.Sleep(o.settle) // the baseline, as in idle
		base, _, _, _ = t.memory()
	}
	r := result{Connections: o.conns, SetupSeconds: time.Since(setup).Seconds()}

	lat := newLatencies(1 << 20)
	var issued, cycles, failed, reported atomic.Int64
	var every time.Duration
	if o.rate > 0 {
		every = time.Duration(float64(time.Second) * float64(o.conns) / o.rate) // one worker's period
	}
	cpu0, each0, ok0 := t.cpu()
	self0, _ := procstat.ProcessCPU(os.Getpid())
	all0, errAll0 := procstat.MachineCPU("/proc/stat")
	t0 := time.Now()
	deadline := t0.Add(o.duration)
	_ = parallel(ctx, o.conns, o.conns, func(ctx context.Context, w int) error {
		next := time.Now().Add(spread(w, o.conns, o.rate/float64(o.conns)))
		for ctx.Err() == nil && time.Now().Before(deadline) { // bounded by the deadline and by the count below
			if every > 0 {
				if d := time.Until(next); d > 0 {
					time.Sleep(min(d, time.Until(deadline))) // pacing
					if !time.Now().Before(deadline) {
						return nil
					}
				}
				next = next.Add(every)
			}
			k := issued.Add(1)
			if k > int64(o.count) {
				return nil
			}
			start := time.Now()
			if err := cycle(ctx, t, creds[int(k)%len(creds)], int(k)); err != nil {
				failed.Add(1)
				if reported.Add(1) <= 5 {
					fmt.Fprintln(os.Stderr, "churn:", err)
				}
				continue
			}
			lat.add(time.Since(start))
			cycles.Add(1)
		}
		return nil
	})
	window := time.Since(t0)
	cpu1, each1, ok1 := t.cpu()
	self1, _ := procstat.ProcessCPU(os.Getpid())
	all1, errAll1 := procstat.MachineCPU("/proc/stat")
	r.MeasuredSeconds = window.Seconds()
	if errAll0 == nil && errAll1 == nil {
		r.MachineCPU = (all1 - all0).Seconds() / window.Seconds()
	}
	r.ClientCPU = (self1 - self0).Seconds() / window.Seconds()
	r.ServerMeasured = ok0 && ok1
	r.ServerCPUSeconds = (cpu1 - cpu0).Seconds()
	r.Cycles, r.Errors = cycles.Load(), failed.Load()
	ps := lat.percentiles(0.5, 0.99, 1)
	r.P50ms, r.P99ms, r.MaxMs = ms(ps[0]), ms(ps[1]), ms(ps[2])
	var mem []procMemory
	if t.measured() {
		time.Sleep(o.settle) // what is left once the server has settled
		r.BaseRSS = base
		r.ServerRSS, r.ServerThreads, mem, _ = t.memory() // zero when unreadable
	}
	var each []time.Duration
	if r.ServerMeasured {
		each = make([]time.Duration, len(each1))
		for i := range each1 {
			each[i] = each1[i] - each0[i]
		}
	}
	r.Instances = instanceResults(t, nil, each, window, mem) // churn's connections come and go
	return r, nil
}

// cycle is one connection of churn: connect, subscribe, disconnect, close.
func cycle(ctx context.Context, t *target, cred string, k int) error {
	c, err := t.dial(ctx, k, cred)
	if err != nil {
		return err
	}
	if err := c.subscribe(t.ownDest(k)); err != nil {
		c.close()
		return err
	}
	return c.disconnect()
}
