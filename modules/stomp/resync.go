package stomp

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/chat-service/chat/modules/chat"
)

// Recovery after relay loss (docs/operations.md, "RabbitMQ restarts"). The
// relay calls Resync when its consumer resumes after events queued for this
// instance may have been lost. Every topic and /user/queue/messages
// subscription then holds live events (as a since-seq replay does) while the
// messages it may have missed are read from the store, and gets them in seq
// order with duplicates dropped, or one resync event when there are more
// than recovery.max_messages.

// Resync bounds: reads run resyncWorkers at a time, and a user's
// /user/queue/messages recovery looks at most resyncSessions sessions.
const (
	resyncWorkers  = 4
	resyncSessions = 1000
)

// resyncJob is one subscription to recover.
type resyncJob struct {
	c     *conn
	sub   *subscription
	user  string
	base  int64            // topic: the highest seq it had; -1: none (then since counts)
	seqs  map[string]int64 // /user/queue/messages: the highest seq per session it had
	since time.Time        // messages created before it are not missing
}

// Resync implements messaging.Resyncer. It marks the subscriptions at once,
// so that nothing the relay hands on after it slips between a position and
// its recovery, and reads the store in the background.
func (h *Hub) Resync(since time.Time) {
	since = since.Truncate(time.Millisecond) // stored times have milliseconds
	h.resyncSince.Store(since.UnixMilli())
	jobs := h.markResync(since)
	if len(jobs) == 0 {
		return
	}
	h.m.resyncs.Add(float64(len(jobs)))
	go h.runResync(jobs)
}

// markResync puts every topic and /user/queue/messages subscription into
// replay and returns a job for each. One that is replaying already (a
// since-seq replay, an earlier resync) is told to run again when done.
func (h *Hub) markResync(since time.Time) []resyncJob {
	conns := h.snapshot(false)
	var jobs []resyncJob
	for _, c := range conns {
		c.mu.Lock()
		for _, s := range c.subs {
			if job, ok := c.markLocked(s, since); ok {
				jobs = append(jobs, job)
			}
		}
		c.mu.Unlock()
	}
	return jobs
}

// markLocked puts s into replay for a resync, or asks its running replay to
// run again. c.mu is held.
func (c *conn) markLocked(s *subscription, since time.Time) (resyncJob, bool) {
	if c.gone || !s.active.Load() || s.revoked || (s.kind != destTopic && s.kind != destMessages) {
		return resyncJob{}, false
	}
	if s.replaying {
		s.recheck = true
		return resyncJob{}, false
	}
	s.replaying = true
	job := resyncJob{c: c, sub: s, user: c.user, base: -1, since: since}
	if at := time.UnixMilli(s.at); at.After(since) {
		job.since = at // nothing before the SUBSCRIBE was due to it
	}
	if s.kind == destTopic {
		if s.lastSeq > 0 || s.positioned {
			job.base = s.lastSeq
		}
	} else {
		job.seqs = maps.Clone(s.seqs)
	}
	return job, true
}

// recovered is the store's answer for one session from one position.
type recovered struct {
	msgs   []chat.Message
	resync bool
	err    error
}

type recoverKey struct {
	session string
	base    int64
	since   int64
}

// resyncRun shares reads between the subscriptions of one Resync: the
// subscribers of a session usually had the same position.
type resyncRun struct {
	h    *Hub
	mu   sync.Mutex
	done map[recoverKey]*recoveredOnce
}

type recoveredOnce struct {
	once sync.Once
	r    recovered
}

func (h *Hub) runResync(jobs []resyncJob) {
	jobs = h.skipUnmoved(jobs)
	if len(jobs) == 0 {
		return
	}
	run := &resyncRun{h: h, done: make(map[recoverKey]*recoveredOnce)}
	work := make(chan resyncJob)
	var wg sync.WaitGroup
	for range min(resyncWorkers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range work {
				run.recoverJob(job)
			}
		}()
	}
	for _, job := range jobs {
		work <- job
	}
	close(work)
	wg.Wait()
}

// skipUnmoved ends at once the topic jobs whose session's last seq is at
// their position (one read for all sessions: after a broker restart most
// sessions had nothing in flight) and returns the others.
func (h *Hub) skipUnmoved(jobs []resyncJob) []resyncJob {
	var ids []string
	seen := make(map[string]bool)
	for _, j := range jobs {
		if j.sub.kind == destTopic && j.base >= 0 && !seen[j.sub.sessionID] {
			seen[j.sub.sessionID] = true
			ids = append(ids, j.sub.sessionID)
		}
	}
	if len(ids) == 0 {
		return jobs
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.o.CallTimeout)
	last, err := h.o.Chat.LastSeqs(ctx, ids)
	cancel()
	if err != nil {
		h.log.Warn("resync: cannot read the sessions' last seqs; reading each", "error", err)
		return jobs
	}
	rest := jobs[:0]
	for _, j := range jobs {
		if seq, ok := last[j.sub.sessionID]; ok && j.sub.kind == destTopic && j.base >= 0 && seq <= j.base {
			if j.c.endReplay(j.sub, nil) {
				h.again(j.c, j.sub)
			}
			continue
		}
		rest = append(rest, j)
	}
	return rest
}

// recover reads one session from a position, once per run.
func (r *resyncRun) recover(user, session string, base int64, since time.Time) recovered {
	k := recoverKey{session: session, base: base}
	if base < 0 {
		k.since = since.UnixMilli()
	}
	r.mu.Lock()
	o := r.done[k]
	if o == nil {
		o = &recoveredOnce{}
		r.done[k] = o
	}
	r.mu.Unlock()
	o.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.h.o.CallTimeout)
		defer cancel()
		o.r.msgs, o.r.resync, o.r.err = r.h.o.Chat.Recover(ctx, user, session, base, since)
	})
	return o.r
}

// recoverJob reads what one subscription missed and hands it over.
func (r *resyncRun) recoverJob(job resyncJob) {
	var out []*payload
	add := func(session string, base int64, rec recovered) {
		if rec.err != nil {
			// The store is down: the subscriber cannot be told what it missed.
			r.h.log.Warn("resync read failed; the subscriber gets a resync event", "session_id", session, "error", rec.err)
		}
		if rec.resync || rec.err != nil {
			from := max(base, 0)
			if p, err := newPayload(&chat.Event{Type: chat.EventResync, SessionID: session, FromSeq: &from}); err == nil {
				out = append(out, p)
			}
			return
		}
		for i := range rec.msgs {
			if p, err := newPayload(&chat.Event{Type: chat.EventMessage, SessionID: session, Message: &rec.msgs[i]}); err == nil {
				out = append(out, p)
			}
		}
	}
	if job.sub.kind == destTopic {
		add(job.sub.sessionID, job.base, r.recover(job.user, job.sub.sessionID, job.base, job.since))
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), r.h.o.CallTimeout)
		active, err := r.h.o.Chat.ActiveSessions(ctx, job.user, job.since, resyncSessions)
		cancel()
		if err != nil {
			r.h.log.Warn("resync: cannot list the user's sessions", "error", err)
		}
		for _, s := range active {
			base, ok := job.seqs[s.SessionID]
			if !ok {
				base = -1
			} else if s.LastSeq <= base {
				continue
			}
			add(s.SessionID, base, r.recover(job.user, s.SessionID, base, job.since))
		}
	}
	if job.c.endReplay(job.sub, out) {
		r.h.again(job.c, job.sub)
	}
}

// again runs another resync of one subscription whose replay was running
// when a Resync came.
func (h *Hub) again(c *conn, s *subscription) {
	since := time.UnixMilli(h.resyncSince.Load())
	c.mu.Lock()
	s.replaying = false // markLocked takes it again
	job, ok := c.markLocked(s, since)
	c.mu.Unlock()
	if ok {
		go h.runResync([]resyncJob{job})
	}
}

// endReplay ends a replay of s: the replayed events, then the live ones it
// held, leave in order with duplicates dropped. It reports whether a Resync
// asked for another round meanwhile; s then stays in replay.
func (c *conn) endReplay(s *subscription, replayed []*payload) (again bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	extra := len(replayed) + len(s.pending) + 1
	s.replaying = false
	if !c.gone {
		for _, p := range replayed {
			c.deliverSubLocked(s, p, extra)
		}
		for _, p := range s.pending {
			c.deliverSubLocked(s, p, extra)
		}
	}
	s.pending = nil
	if s.recheck && !c.gone && s.active.Load() {
		s.recheck = false
		s.replaying = true
		return true
	}
	s.recheck = false
	return false
}
