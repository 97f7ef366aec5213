package stomp_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

// fuzzSession is the session the fuzzed connection's user (alice) is in.
const fuzzSession = "0193a3f4-0000-7000-8000-00000000f022"

// FuzzConn drives the connection state machine with arbitrary input, split
// into transport messages at 0xFF bytes. Whatever arrives, the connection
// must not panic, must not write a frame its peer cannot parse, and must
// end when the peer goes away.
func FuzzConn(f *testing.F) {
	connect := "CONNECT\naccept-version:1.2\nheart-beat:0,0\nAuthorization:Bearer test:alice\n\n\x00"
	for _, s := range []string{
		connect,
		connect + "\xffSUBSCRIBE\nid:1\ndestination:/topic/session." + fuzzSession + "\nsince-seq:0\nreceipt:r\n\n\x00",
		connect + "SUBSCRIBE\nid:q\ndestination:/user/queue/errors\n\n\x00\xffSEND\ndestination:/app/chat.send\ncontent-type:application/json\nreceipt:s\n\n{\"sessionId\":\"" + fuzzSession + "\",\"content\":\"hi\",\"clientMessageId\":\"c-1\"}\x00",
		connect + "SEND\ndestination:/app/chat.read\n\n{\"sessionId\":\"" + fuzzSession + "\",\"seq\":3}\x00",
		connect + "SEND\ndestination:/app/chat.typing\n\n{\"sessionId\":\"" + fuzzSession + "\"}\x00UNSUBSCRIBE\nid:1\n\n\x00DISCONNECT\nreceipt:d\n\n\x00",
		"STOMP\naccept-version:1.0\nAuthorization:test:bob\n\n\x00SUBSCRIBE\ndestination:/user/queue/messages\n\n\x00",
		connect + "SUBSCRIBE\nid:1\ndestination:/topic/session.x\n\n\x00",
		connect + "SEND\ndestination:/topic/x\n\n\x00",
		"\n\n\xff\n",
		"SEND\n\n\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e := newEnv(t, func(o *stomp.Options) {
			o.Limits.MaxFrameBytes = 4096
			o.Limits.MaxSubscriptions = 8
			o.ConnectTimeout = time.Second
		})
		e.b.CreateSessionWithID(fuzzSession, "alice", "bob")
		tr := stomptest.NewTransport()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = e.hub.Serve(context.Background(), tr, stomp.ConnOptions{Transport: "fuzz"}) // only ErrShuttingDown, not here
		}()
		for _, msg := range bytes.Split(in, []byte{0xff}) {
			if tr.IsClosed() {
				break
			}
			tr.Send(string(msg))
		}
		e.b.Publish(fuzzSession, "bob", "live")
		_ = tr.Close(stomp.CloseNormal, "fuzz over")
		select {
		case <-done:
		case <-time.After(stomptest.Wait):
			t.Fatal("Serve did not return after the peer went away")
		}
		if err := tr.Err(); err != nil {
			t.Fatalf("the server wrote a frame that does not parse: %v", err)
		}
	})
}
