package stomp_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/stomp"
	"github.com/chat-service/chat/modules/stomp/stomptest"
)

func TestConnectNegotiation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		headers   []string
		version   string
		heartBeat string
	}{
		{name: "1.2 with heart-beats", headers: []string{"accept-version", "1.0,1.1,1.2", "heart-beat", "10000,20000"}, version: "1.2", heartBeat: "20000,10000"},
		{name: "no accept-version is 1.0", version: "1.0", heartBeat: "0,0"},
		{name: "1.1", headers: []string{"accept-version", "1.0,1.1"}, version: "1.1", heartBeat: "0,0"},
		{name: "heart-beats clamped to the bounds", headers: []string{"accept-version", "1.2", "heart-beat", "1,3600000"}, version: "1.2", heartBeat: "60000,20"},
		{name: "client cannot send heart-beats", headers: []string{"accept-version", "1.2", "heart-beat", "0,5000"}, version: "1.2", heartBeat: "5000,0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			tr := e.serve(t, stomp.ConnOptions{})
			cmd := frame.CONNECT
			if tc.version == "1.1" {
				cmd = frame.STOMP
			}
			tr.SendFrame(cmd, "", append([]string{"Authorization", "Bearer " + stomptest.Token("alice", time.Time{})}, tc.headers...)...)
			f := tr.Expect(t, frame.CONNECTED)
			for k, want := range map[string]string{"version": tc.version, "heart-beat": tc.heartBeat, "server": "chat-service", "user-name": "alice"} {
				if got := f.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	t.Parallel()
	expired := stomptest.Token("alice", time.Now().Add(-time.Minute))
	tests := []struct {
		name    string
		opts    stomp.ConnOptions
		frames  [][]string // command, then header pairs
		message string
	}{
		{name: "no token", frames: [][]string{{frame.CONNECT, "accept-version", "1.2"}}, message: "unauthorized"},
		{name: "invalid token", frames: [][]string{{frame.CONNECT, "accept-version", "1.2", "Authorization", "Bearer nope"}}, message: "unauthorized"},
		{name: "other scheme", frames: [][]string{{frame.CONNECT, "Authorization", "Basic " + stomptest.Token("alice", time.Time{})}}, message: "unauthorized"},
		{name: "unsupported version", frames: [][]string{{frame.CONNECT, "accept-version", "2.0", "Authorization", "Bearer " + stomptest.Token("a", time.Time{})}}, message: "unsupported version"},
		{name: "bad heart-beat", frames: [][]string{{frame.CONNECT, "accept-version", "1.2", "heart-beat", "x", "Authorization", "Bearer " + stomptest.Token("a", time.Time{})}}, message: "invalid heart-beat"},
		{name: "frame before CONNECT", frames: [][]string{{frame.SUBSCRIBE, "id", "1", "destination", stomp.QueueMessages}}, message: "expected CONNECT"},
		{name: "principal already expired", opts: stomp.ConnOptions{Principal: &stomp.Principal{UserID: "a", ExpiresAt: time.Now().Add(-time.Second)}},
			frames: [][]string{{frame.CONNECT, "accept-version", "1.2"}}, message: "token expired"},
		{name: "expired token", frames: [][]string{{frame.CONNECT, "accept-version", "1.2", "Authorization", "Bearer " + expired}}, message: "unauthorized"},
		{name: "second CONNECT", frames: [][]string{
			{frame.CONNECT, "accept-version", "1.2", "Authorization", "Bearer " + stomptest.Token("a", time.Time{})},
			{frame.CONNECT, "accept-version", "1.2"},
		}, message: "already connected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			tr := e.serve(t, tc.opts)
			for _, fr := range tc.frames {
				tr.SendFrame(fr[0], "", fr[1:]...)
			}
			f := tr.Next(t)
			if f.Command == frame.CONNECTED {
				f = tr.Next(t)
			}
			if f.Command != frame.ERROR || f.Header.Get("message") != tc.message {
				t.Fatalf("got %s message=%q body=%q, want ERROR %q", f.Command, f.Header.Get("message"), f.Body, tc.message)
			}
			if tc.message == "unsupported version" && f.Header.Get("version") != stomp.SupportedVersions {
				t.Errorf("version header = %q", f.Header.Get("version"))
			}
			tr.WaitClosed(t)
		})
	}
}

func TestPreauthenticatedConnectIgnoresConnectToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.serve(t, stomp.ConnOptions{Principal: &stomp.Principal{UserID: "bob"}})
	tr.SendFrame(frame.CONNECT, "", "accept-version", "1.2", "Authorization", "Bearer garbage")
	if got := tr.Expect(t, frame.CONNECTED).Header.Get("user-name"); got != "bob" {
		t.Fatalf("user-name = %q, want bob (the upgrade's principal decides)", got)
	}
}

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *stomp.Options) { o.ConnectTimeout = 50 * time.Millisecond })
	tr := e.serve(t, stomp.ConnOptions{})
	if f := tr.ExpectError(t); f.Header.Get("message") != "expected CONNECT" {
		t.Fatalf("message = %q", f.Header.Get("message"))
	}
}

func TestTokenExpiryClosesConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.serve(t, stomp.ConnOptions{})
	tr.Connect(t, stomptest.Token("alice", time.Now().Add(150*time.Millisecond)))
	start := time.Now()
	f := tr.ExpectError(t)
	if f.Header.Get("message") != "token expired" {
		t.Fatalf("message = %q", f.Header.Get("message"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("closed after %s", d)
	}
}

func TestHeartBeats(t *testing.T) {
	t.Parallel()
	t.Run("server sends heart-beats", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		tr := e.connect(t, "alice", "heart-beat", "0,30")
		eventually(t, "three heart-beats", func() bool { return tr.Heartbeats.Load() >= 3 })
	})
	t.Run("silent client is disconnected", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		start := time.Now()
		tr := e.connect(t, "alice", "heart-beat", "40,0")
		f := tr.ExpectError(t)
		if f.Header.Get("message") != "heart-beat timeout" {
			t.Fatalf("message = %q", f.Header.Get("message"))
		}
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("disconnected after %s, before twice the 40ms interval", d)
		}
	})
	t.Run("client heart-beats keep it open", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		tr := e.connect(t, "alice", "heart-beat", "150,0")
		for range 12 {
			time.Sleep(25 * time.Millisecond) // the client's own heart-beat period
			tr.Send("\n")
		}
		if tr.IsClosed() {
			t.Fatal("closed although the client sent heart-beats")
		}
	})
}

func TestPings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.serve(t, stomp.ConnOptions{PingPeriod: 20 * time.Millisecond})
	tr.Connect(t, stomptest.Token("a", time.Time{}))
	eventually(t, "pings", func() bool { return tr.Pings.Load() >= 2 })
}

func TestReceiptsAndNoOps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.connect(t, "alice")
	for i, fr := range [][]string{
		{frame.ACK, "id", "1"},
		{frame.NACK, "id", "2"},
		{frame.SUBSCRIBE, "id", "q", "destination", stomp.QueueMessages, "ack", "client-individual"},
		{frame.UNSUBSCRIBE, "id", "q"},
		{frame.UNSUBSCRIBE, "id", "unknown"},
	} {
		r := "r" + string(rune('0'+i))
		tr.SendFrame(fr[0], "", append(fr[1:], "receipt", r)...)
		if got := tr.Expect(t, frame.RECEIPT).Header.Get("receipt-id"); got != r {
			t.Fatalf("%s: receipt-id %q, want %q", fr[0], got, r)
		}
	}
	tr.SendFrame(frame.DISCONNECT, "", "receipt", "bye")
	if got := tr.Expect(t, frame.RECEIPT).Header.Get("receipt-id"); got != "bye" {
		t.Fatalf("DISCONNECT receipt-id %q", got)
	}
	if code, _ := tr.WaitClosed(t); code != stomp.CloseNormal {
		t.Fatalf("close code %d", code)
	}
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		send    func(tr *stomptest.Transport)
		message string
	}{
		{"garbage bytes", func(tr *stomptest.Transport) { tr.Send("\x00\xff\xfe garbage\n\n") }, "malformed frame"},
		{"bad escape", func(tr *stomptest.Transport) { tr.Send("SEND\ndestination:/app/chat.send\nx:\\q\n\n\x00") }, "malformed frame"},
		{"binary message", func(tr *stomptest.Transport) { tr.SendError(stomp.ErrBinaryMessage) }, "binary message"},
		{"transport says too large", func(tr *stomptest.Transport) { tr.SendError(stomp.ErrMessageTooLarge) }, "frame too large"},
		{"10 MB frame in pieces", func(tr *stomptest.Transport) {
			tr.Send("SEND\ndestination:/app/chat.send\n\n")
			chunk := strings.Repeat("x", 1<<20)
			for range 10 {
				tr.Send(chunk)
				if tr.IsClosed() {
					return
				}
			}
		}, "frame too large"},
		{"content-length of 10 MB", func(tr *stomptest.Transport) { tr.Send("SEND\ncontent-length:10485760\n\n") }, "frame too large"},
		{"transaction", func(tr *stomptest.Transport) { tr.SendFrame(frame.BEGIN, "", "transaction", "t1") }, "transactions are not supported"},
		{"server frame", func(tr *stomptest.Transport) { tr.SendFrame(frame.MESSAGE, "", "destination", "/x") }, "unexpected frame"},
		{"subscribe without id", func(tr *stomptest.Transport) { tr.SendFrame(frame.SUBSCRIBE, "", "destination", stomp.QueueMessages) }, "missing id"},
		{"subscribe bad ack", func(tr *stomptest.Transport) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", stomp.QueueMessages, "ack", "sometimes")
		}, "invalid ack"},
		{"duplicate subscription id", func(tr *stomptest.Transport) {
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", stomp.QueueMessages)
			tr.SendFrame(frame.SUBSCRIBE, "", "id", "1", "destination", stomp.QueueEvents)
		}, "duplicate subscription id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			tr := e.connect(t, "alice")
			tc.send(tr)
			f := tr.ExpectError(t)
			if got := f.Header.Get("message"); got != tc.message {
				t.Fatalf("message = %q (%s), want %q", got, f.Body, tc.message)
			}
		})
	}
}

func TestIncompleteFrameTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *stomp.Options) { o.PartialTimeout = 50 * time.Millisecond })
	tr := e.connect(t, "alice")
	tr.Send("SEND\ndestination:/app/chat.send\n\nno NUL ever")
	if f := tr.ExpectError(t); f.Header.Get("message") != "malformed frame" {
		t.Fatalf("message = %q", f.Header.Get("message"))
	}
}

func TestTooManySubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tr := e.connect(t, "alice")
	var b strings.Builder
	for i := range 10000 {
		b.WriteString("SUBSCRIBE\nid:s")
		b.WriteString(strings.Repeat("x", i%3))
		b.WriteString(strconv.Itoa(i))
		b.WriteString("\ndestination:/user/queue/events\n\n\x00")
		if b.Len() > 60000 {
			tr.Send(b.String())
			b.Reset()
			if tr.IsClosed() {
				break
			}
		}
	}
	if !tr.IsClosed() {
		tr.Send(b.String())
	}
	if f := tr.ExpectError(t); f.Header.Get("message") != "too many subscriptions" {
		t.Fatalf("message = %q", f.Header.Get("message"))
	}
	eventually(t, "subscriptions released", func() bool { return counter(t, e.reg, "chat_stomp_subscriptions") == 0 })
}

func TestMaxConnectionsPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *stomp.Options) { o.Limits.MaxConnsPerUser = 2 })
	e.connect(t, "alice")
	e.connect(t, "alice")
	tr := e.serve(t, stomp.ConnOptions{})
	tr.SendFrame(frame.CONNECT, "", "accept-version", "1.2", "Authorization", "Bearer "+stomptest.Token("alice", time.Time{}))
	if f := tr.ExpectError(t); f.Header.Get("message") != "too many connections" {
		t.Fatalf("message = %q", f.Header.Get("message"))
	}
	e.connect(t, "bob") // others are not affected
}

func TestShutdownClosesConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.connect(t, "alice")
	b := e.serve(t, stomp.ConnOptions{}) // not even connected yet
	ctx := t.Context()
	if err := e.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*stomptest.Transport{a, b} {
		if code, _ := tr.WaitClosed(t); code != stomp.CloseGoingAway {
			t.Fatalf("close code %d, want 1001", code)
		}
	}
	late := stomptest.NewTransport()
	if err := e.hub.Serve(ctx, late, stomp.ConnOptions{}); err != stomp.ErrShuttingDown {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	late.WaitClosed(t)
}
