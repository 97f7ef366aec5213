package stomp_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/stomp"
)

func TestSinceSeqReplaysThenGoesLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	for i := range 5 {
		e.b.Append(sid, "alice", "old "+strconv.Itoa(i))
	}
	var once sync.Once
	e.b.OnReplay = func(string) {
		// While the replay runs: a new message goes live, and seq 5, already
		// replayed, arrives again (at-least-once relay).
		once.Do(func() {
			m6 := e.b.Publish(sid, "alice", "new")
			dup := e.b.Messages(sid)[4]
			e.hub.Deliver(chat.Event{Type: chat.EventMessage, SessionID: sid, Message: &dup, Participants: []string{"alice", "bob"}})
			_ = m6
		})
	}
	bob := e.connect(t, "bob")
	dest := stomp.TopicSessionPrefix + sid
	bob.SendFrame(frame.SUBSCRIBE, "", "id", "t", "destination", dest, "since-seq", "2", "receipt", "r")
	// The replayed messages, then what went live meanwhile, in seq order and
	// without the duplicate; the RECEIPT after the replayed messages.
	for _, seq := range []int64{3, 4, 5, 6} {
		expectMessage(t, bob, dest, seq)
	}
	if f := bob.Expect(t, frame.RECEIPT); f.Header.Get("receipt-id") != "r" {
		t.Fatalf("receipt %v", f.Header)
	}
	e.b.Publish(sid, "alice", "later")
	expectMessage(t, bob, dest, 7)
	bob.NoFrame(t, 30*time.Millisecond)
}

func TestSinceSeqEdges(t *testing.T) {
	t.Parallel()
	t.Run("at lastSeq replays nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		sid := e.b.CreateSession("alice", "bob")
		e.b.Append(sid, "alice", "x")
		bob := e.connect(t, "bob")
		subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid, "since-seq", "1")
		bob.NoFrame(t, 30*time.Millisecond)
	})
	t.Run("ignored on user queues", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		bob := e.connect(t, "bob")
		subscribe(t, bob, "q", stomp.QueueMessages, "since-seq", "not even a number")
	})
	for _, bad := range []string{"-1", "x", "1.5", ""} {
		t.Run("invalid since-seq "+strconv.Quote(bad), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			sid := e.b.CreateSession("alice", "bob")
			bob := e.connect(t, "bob")
			bob.SendFrame(frame.SUBSCRIBE, "", "id", "t", "destination", stomp.TopicSessionPrefix+sid, "since-seq", bad)
			if f := bob.ExpectError(t); f.Header.Get("message") != "invalid since-seq" {
				t.Fatalf("message %q", f.Header.Get("message"))
			}
		})
	}
}

func TestResyncEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.b.MaxReplay = 3
	sid := e.b.CreateSession("alice", "bob")
	for range 5 {
		e.b.Append(sid, "alice", "x")
	}
	bob := e.connect(t, "bob")
	dest := stomp.TopicSessionPrefix + sid
	bob.SendFrame(frame.SUBSCRIBE, "", "id", "t", "destination", dest, "since-seq", "1", "receipt", "r")
	ev := eventOf(t, bob.Expect(t, frame.MESSAGE))
	if ev.Type != chat.EventResync || ev.SessionID != sid || ev.FromSeq == nil || *ev.FromSeq != 1 {
		t.Fatalf("want resync from 1, got %+v", ev)
	}
	bob.Expect(t, frame.RECEIPT)
	e.b.Publish(sid, "alice", "live")
	expectMessage(t, bob, dest, 6) // the subscription goes on live
}

func TestDuplicatesAndOrderOnLiveSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	dest := stomp.TopicSessionPrefix + sid
	subscribe(t, bob, "t", dest)
	subscribe(t, bob, "q", stomp.QueueMessages)
	m1 := e.b.Publish(sid, "alice", "one")
	e.b.Publish(sid, "alice", "two")
	// A redelivery of seq 1 after seq 2 is dropped on both subscriptions.
	e.hub.Deliver(chat.Event{Type: chat.EventMessage, SessionID: sid, Message: &m1, Participants: []string{"alice", "bob"}})
	seen := map[string][]string{}
	for range 4 {
		f := bob.Expect(t, frame.MESSAGE)
		seen[f.Header.Get("subscription")] = append(seen[f.Header.Get("subscription")], f.Header.Get("seq"))
	}
	bob.NoFrame(t, 30*time.Millisecond)
	for _, sub := range []string{"t", "q"} {
		if got := seen[sub]; len(got) != 2 || got[0] != "1" || got[1] != "2" {
			t.Fatalf("subscription %s got seqs %v", sub, got)
		}
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *stomp.Options) { o.Limits.OutboundQueue = 16 })
	sid := e.b.CreateSession("alice", "bob", "carol")
	dest := stomp.TopicSessionPrefix + sid
	fast := e.connect(t, "bob")
	subscribe(t, fast, "t", dest)
	slow := e.connect(t, "carol")
	subscribe(t, slow, "t", dest)
	slow.Block()

	const n = 200
	for i := range n { // at the pace of the fast consumer
		e.b.Publish(sid, "alice", "m"+strconv.Itoa(i))
		expectMessage(t, fast, dest, int64(i+1))
	}
	eventually(t, "slow consumer counted", func() bool {
		return counter(t, e.reg, "chat_stomp_slow_consumer_disconnects_total") == 1
	})
	slow.Unblock()
	// What was in flight may still arrive; then the ERROR, then the close.
	for {
		f := slow.Next(t)
		if f.Command == frame.ERROR {
			if f.Header.Get("message") != "slow consumer" {
				t.Fatalf("message %q", f.Header.Get("message"))
			}
			break
		}
	}
	slow.WaitClosed(t)
	e.b.Publish(sid, "alice", "after")
	expectMessage(t, fast, dest, n+1)
}

func TestTypingDroppedFirstUnderBackPressure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *stomp.Options) { o.Limits.OutboundQueue = 8 })
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", stomp.TopicSessionPrefix+sid)
	bob.Block()
	// One frame may be stuck in the writer; the queue then fills with typing,
	// which messages displace without the connection counting as slow.
	for range 20 {
		e.hub.Deliver(chat.Event{Type: chat.EventTyping, SessionID: sid, UserID: "alice", Participants: []string{"alice", "bob"}, Except: "alice"})
	}
	for range 6 {
		e.b.Publish(sid, "alice", "m")
	}
	if got := counter(t, e.reg, "chat_stomp_slow_consumer_disconnects_total"); got != 0 {
		t.Fatalf("slow consumer disconnects = %v", got)
	}
	// The writer may have taken a few into a batch before blocking; the
	// rest beyond the queue's 8 are dropped.
	if got := counter(t, e.reg, "chat_stomp_dropped_events_total"); got < 1 {
		t.Fatalf("dropped typing events = %v", got)
	}
	bob.Unblock()
	eventually(t, "a coalesced batch", func() bool { return bob.Batches.Load() > 0 })
	var seqs []string
	for len(seqs) < 6 {
		f := bob.Expect(t, frame.MESSAGE)
		if s := f.Header.Get("seq"); s != "" {
			seqs = append(seqs, s)
		}
	}
	if seqs[0] != "1" || seqs[5] != "6" {
		t.Fatalf("messages %v", seqs)
	}
}
