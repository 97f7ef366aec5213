package stomp_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/stomp"
)

// The relay lost events (Backend.Append stores without publishing, as a
// RabbitMQ restart drops queued events): after Resync every topic
// subscription gets the missed messages in seq order, then live ones,
// without duplicates.
func TestResyncRecoversLostMessagesOnTopics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob", "carol")
	dest := stomp.TopicSessionPrefix + sid
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", dest)
	carol := e.connect(t, "carol")
	subscribe(t, carol, "t", dest, "since-seq", "0")
	since := time.Now()
	e.b.Publish(sid, "alice", "seen")
	expectMessage(t, bob, dest, 1)
	expectMessage(t, carol, dest, 1)

	e.b.Append(sid, "alice", "lost 2")
	e.b.Append(sid, "alice", "lost 3")
	e.hub.Resync(since)
	// A redelivery of 3 and a new 4 arriving live while the recovery runs.
	m3 := e.b.Messages(sid)[2]
	e.hub.Deliver(chat.Event{Type: chat.EventMessage, SessionID: sid, Message: &m3, Participants: []string{"alice", "bob", "carol"}})
	e.b.Publish(sid, "alice", "live 4")
	for _, seq := range []int64{2, 3, 4} {
		expectMessage(t, bob, dest, seq)
		expectMessage(t, carol, dest, seq)
	}
	bob.NoFrame(t, 50*time.Millisecond)
	carol.NoFrame(t, 10*time.Millisecond)
}

// A topic subscription that had no message yet recovers what was created
// after it subscribed, not the session's older history.
func TestResyncWithoutPositionStartsAtTheSubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	e.b.Append(sid, "alice", "history 1")
	e.b.Append(sid, "alice", "history 2")
	time.Sleep(5 * time.Millisecond) // creation times are in ms
	dest := stomp.TopicSessionPrefix + sid
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", dest)
	time.Sleep(5 * time.Millisecond)
	e.b.Append(sid, "alice", "lost 3")
	e.hub.Resync(time.Now().Add(-time.Hour))
	expectMessage(t, bob, dest, 3)
	bob.NoFrame(t, 50*time.Millisecond)
}

// /user/queue/messages recovers every session of the user with activity in
// the window: from the seq it had, or from the window for a session it had
// nothing of.
func TestResyncRecoversUserQueueMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s1 := e.b.CreateSession("alice", "bob")
	s2 := e.b.CreateSession("carol", "bob")
	quiet := e.b.CreateSession("dave", "bob")
	e.b.Append(quiet, "dave", "long ago")
	time.Sleep(5 * time.Millisecond)
	bob := e.connect(t, "bob")
	subscribe(t, bob, "m", stomp.QueueMessages)
	since := time.Now()
	e.b.Publish(s1, "alice", "seen")
	expectMessage(t, bob, stomp.QueueMessages, 1)

	e.b.Append(s1, "alice", "lost s1/2")
	e.b.Append(s2, "carol", "lost s2/1")
	e.hub.Resync(since)
	got := map[string][]int64{}
	for range 2 {
		ev := eventOf(t, bob.Expect(t, frame.MESSAGE))
		got[ev.SessionID] = append(got[ev.SessionID], ev.Message.Seq)
	}
	if len(got[s1]) != 1 || got[s1][0] != 2 || len(got[s2]) != 1 || got[s2][0] != 1 {
		t.Fatalf("recovered %v, want s1: [2], s2: [1]", got)
	}
	bob.NoFrame(t, 50*time.Millisecond)
}

// More missed than recovery.max_messages: one resync event instead.
func TestResyncPastTheLimitSendsAResyncEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.b.MaxReplay = 3
	sid := e.b.CreateSession("alice", "bob")
	dest := stomp.TopicSessionPrefix + sid
	bob := e.connect(t, "bob")
	subscribe(t, bob, "t", dest)
	since := time.Now()
	e.b.Publish(sid, "alice", "seen")
	expectMessage(t, bob, dest, 1)
	for i := range 5 {
		e.b.Append(sid, "alice", "lost "+strconv.Itoa(i))
	}
	e.hub.Resync(since)
	ev := eventOf(t, bob.Expect(t, frame.MESSAGE))
	if ev.Type != chat.EventResync || ev.SessionID != sid || ev.FromSeq == nil || *ev.FromSeq != 1 {
		t.Fatalf("got %+v, want a resync event from seq 1", ev)
	}
	e.b.Publish(sid, "alice", "live")
	expectMessage(t, bob, dest, 7)
}

// A Resync during a since-seq replay runs again after it, so a message lost
// while the replay read the store still arrives.
func TestResyncDuringReplayRunsAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	e.b.Append(sid, "alice", "old 1")
	done := false
	e.b.OnReplay = func(string) {
		if !done {
			done = true
			e.b.Append(sid, "alice", "lost 2")
			e.hub.Resync(time.Now().Add(-time.Minute))
		}
	}
	bob := e.connect(t, "bob")
	dest := stomp.TopicSessionPrefix + sid
	bob.SendFrame(frame.SUBSCRIBE, "", "id", "t", "destination", dest, "since-seq", "0", "receipt", "r")
	expectMessage(t, bob, dest, 1)
	// The RECEIPT follows the since-seq replay; the second round is
	// asynchronous and may come before or after it.
	var seqs []string
	for receipt := false; !receipt || len(seqs) < 1; {
		f := bob.Next(t)
		if f.Command == frame.RECEIPT {
			receipt = true
			continue
		}
		seqs = append(seqs, f.Header.Get("seq"))
	}
	if len(seqs) != 1 || seqs[0] != "2" {
		t.Fatalf("after the replay got seqs %v, want [2]", seqs)
	}
	bob.NoFrame(t, 50*time.Millisecond)
}

// After a broker restart most sessions had nothing in flight: one read of
// their last seqs spares them a recovery read each, and their subscribers
// go on with live events.
func TestResyncReadsOnlySessionsThatMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	bob := e.connect(t, "bob")
	var sessions []string
	for i := range 5 {
		sid := e.b.CreateSession("alice", "bob")
		sessions = append(sessions, sid)
		subscribe(t, bob, "t"+strconv.Itoa(i), stomp.TopicSessionPrefix+sid)
		e.b.Publish(sid, "alice", "seen")
		expectMessage(t, bob, stomp.TopicSessionPrefix+sid, 1)
	}
	e.b.Append(sessions[2], "alice", "lost")
	e.hub.Resync(time.Now().Add(-time.Minute))
	expectMessage(t, bob, stomp.TopicSessionPrefix+sessions[2], 2)
	if n := e.b.Recovers.Load(); n != 1 {
		t.Fatalf("%d recovery reads for one session that moved among five", n)
	}
	e.b.Publish(sessions[4], "alice", "live")
	expectMessage(t, bob, stomp.TopicSessionPrefix+sessions[4], 2)
	bob.NoFrame(t, 50*time.Millisecond)
}
