package stomp_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/stomp"
)

// TestLongSubscriptionHeadersRefused: a subscription keeps its id and
// destination for life and repeats them in every MESSAGE, so a 4 KiB id
// (or an over-long destination) is an ERROR, not 4 KiB per delivery.
func TestLongSubscriptionHeadersRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	sid := e.b.CreateSession("alice", "bob")
	for _, tc := range []struct {
		name, id, dest, want string
	}{
		{"4 KiB id", strings.Repeat("i", 4096), stomp.TopicSessionPrefix + sid, "subscription id too long"},
		{"257-byte id", strings.Repeat("i", 257), stomp.QueueMessages, "subscription id too long"},
		{"long destination", "1", stomp.TopicSessionPrefix + strings.Repeat("x", 300), "destination too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bob := e.connect(t, "bob")
			bob.SendFrame(frame.SUBSCRIBE, "", "id", tc.id, "destination", tc.dest, "receipt", "r")
			f := bob.ExpectError(t)
			if got := f.Header.Get("message"); got != tc.want {
				t.Fatalf("ERROR %q, want %q", got, tc.want)
			}
			bob.WaitClosed(t)
		})
	}
	// 256 bytes is still fine.
	bob := e.connect(t, "bob")
	subscribe(t, bob, strings.Repeat("i", 256), stomp.TopicSessionPrefix+sid)
}

// TestQueueBytesCountHeaders: the outbound byte bound counts what goes on
// the wire, headers included. A client that stops reading, subscribed with
// a long id, gets no more MESSAGE bytes queued than the bound before it is
// a slow consumer; counting bodies alone let it queue about twice as much.
func TestQueueBytesCountHeaders(t *testing.T) {
	t.Parallel()
	const budget = 32 << 10
	e := newEnv(t, func(o *stomp.Options) {
		o.Limits.OutboundQueue = 10000 // frames: only the byte bound can fire
		o.QueueBytes = budget
	})
	sid := e.b.CreateSession("alice", "bob")
	bob := e.connect(t, "bob")
	subscribe(t, bob, strings.Repeat("s", 256), stomp.TopicSessionPrefix+sid)
	bob.Block()
	queued := 0
	for counter(t, e.reg, "chat_stomp_slow_consumer_disconnects_total") == 0 {
		if queued == 1000 {
			t.Fatal("no slow consumer after 1000 messages")
		}
		e.b.Publish(sid, "alice", "m"+strconv.Itoa(queued))
		queued++
	}
	bob.Unblock()
	f := bob.Expect(t, frame.MESSAGE) // the one the writer held when it blocked
	size := len(stomp.AppendFrame(nil, f, stomp.V12))
	// queued-1 messages fitted the bound, one of them perhaps in the writer.
	if wire := (queued - 2) * size; wire > budget {
		t.Fatalf("%d messages of %d bytes (%d bytes) were queued for a client that did not read; the bound is %d", queued-2, size, wire, budget)
	}
}
