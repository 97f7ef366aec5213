// Package stomptest gives tests of the STOMP gateway what httptest gives
// HTTP tests: a fake Transport that records the frames a connection writes,
// an in-memory chat backend (stomp.Chat and stomp.Commands) that publishes
// events to a Hub, and a token Authenticator.
package stomptest

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/stomp"
)

// Wait bounds every wait of this package.
var Wait = 5 * time.Second

type inMsg struct {
	data []byte
	err  error
}

// Transport is a fake stomp.Transport. The test plays the client: Send and
// SendFrame feed the connection's reader, Next returns what its writer wrote.
type Transport struct {
	in        chan inMsg
	frames    chan *frame.Frame
	closed    chan struct{}
	closeOnce sync.Once
	gate      chan struct{} // non-nil: Write blocks until it is closed (a client that does not read)

	mu     sync.Mutex
	dec    *stomp.Decoder
	code   int
	reason string
	err    error // a frame the client side could not parse

	Heartbeats atomic.Int64 // heart-beat EOLs written
	Pings      atomic.Int64
	Writes     atomic.Int64
	Batches    atomic.Int64 // EndBatch calls (stomp.Batcher)
	inBatch    atomic.Bool
}

// BeginBatch implements stomp.Batcher.
func (t *Transport) BeginBatch() {
	if !t.inBatch.CompareAndSwap(false, true) {
		panic("stomptest: nested BeginBatch")
	}
}

// EndBatch implements stomp.Batcher.
func (t *Transport) EndBatch() error {
	if !t.inBatch.CompareAndSwap(true, false) {
		panic("stomptest: EndBatch without BeginBatch")
	}
	t.Batches.Add(1)
	return nil
}

// NewTransport returns a Transport ready for Hub.Serve.
func NewTransport() *Transport {
	d := stomp.NewDecoder(1 << 26)
	d.SetVersion(stomp.V12)
	return &Transport{
		in:     make(chan inMsg, 1024),
		frames: make(chan *frame.Frame, 1<<16),
		closed: make(chan struct{}),
		dec:    d,
	}
}

// Read implements stomp.Transport.
func (t *Transport) Read() ([]byte, error) {
	select {
	case m := <-t.in:
		return m.data, m.err
	case <-t.closed:
		return nil, io.EOF
	}
}

// Write implements stomp.Transport: it parses what the server wrote.
func (t *Transport) Write(p []byte) error {
	t.mu.Lock()
	g := t.gate
	t.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-t.closed:
			return io.ErrClosedPipe
		}
	}
	select {
	case <-t.closed:
		return io.ErrClosedPipe
	default:
	}
	t.Writes.Add(1)
	if len(p) == 1 && p[0] == '\n' {
		t.Heartbeats.Add(1)
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dec.Write(p)
	for {
		f, err := t.dec.Next()
		if err != nil {
			t.err = err
			return nil
		}
		if f == nil {
			return nil
		}
		select {
		case t.frames <- f:
		default:
			t.err = errors.New("stomptest: frame buffer full")
		}
	}
}

// Ping implements stomp.Transport.
func (t *Transport) Ping() error { t.Pings.Add(1); return nil }

// Close implements stomp.Transport.
func (t *Transport) Close(code int, reason string) error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.code, t.reason = code, reason
		t.mu.Unlock()
		close(t.closed)
	})
	return nil
}

// Block makes the server's writes block until Unblock: a client that
// stopped reading (with no write deadline, unlike a real carrier).
func (t *Transport) Block() {
	t.mu.Lock()
	t.gate = make(chan struct{})
	t.mu.Unlock()
}

// Unblock lets blocked writes through again.
func (t *Transport) Unblock() {
	t.mu.Lock()
	close(t.gate)
	t.gate = nil
	t.mu.Unlock()
}

// Send feeds raw bytes to the connection as one transport message.
func (t *Transport) Send(raw string) { t.push(inMsg{data: []byte(raw)}) }

// SendError makes the connection's next Read fail with err
// (stomp.ErrBinaryMessage, stomp.ErrMessageTooLarge, io.EOF).
func (t *Transport) SendError(err error) { t.push(inMsg{err: err}) }

func (t *Transport) push(m inMsg) {
	select {
	case t.in <- m:
	case <-t.closed:
	case <-time.After(Wait):
		panic("stomptest: the connection does not read")
	}
}

// SendFrame encodes and sends one STOMP 1.2 frame. headers are name, value pairs.
func (t *Transport) SendFrame(command, body string, headers ...string) {
	f := frame.New(command, headers...)
	if body != "" {
		f.Body = []byte(body)
	}
	t.push(inMsg{data: stomp.AppendFrame(nil, f, stomp.V12)})
}

// Connect sends CONNECT for STOMP 1.2 with token and expects CONNECTED.
func (t *Transport) Connect(tb testing.TB, token string, headers ...string) *frame.Frame {
	tb.Helper()
	h := append([]string{frame.AcceptVersion, "1.2", frame.Host, "chat"}, headers...)
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	t.SendFrame(frame.CONNECT, "", h...)
	return t.Expect(tb, frame.CONNECTED)
}

// Next returns the next frame the server wrote, failing tb after Wait.
func (t *Transport) Next(tb testing.TB) *frame.Frame {
	tb.Helper()
	select {
	case f := <-t.frames:
		return f
	case <-time.After(Wait):
		tb.Fatalf("stomptest: no frame within %s (closed: %v)", Wait, t.IsClosed())
		return nil
	}
}

// Expect returns the next frame and fails tb unless it is a command frame.
func (t *Transport) Expect(tb testing.TB, command string) *frame.Frame {
	tb.Helper()
	f := t.Next(tb)
	if f.Command != command {
		tb.Fatalf("stomptest: got %s (message %q, body %q), want %s", f.Command, f.Header.Get("message"), f.Body, command)
	}
	return f
}

// ExpectError expects an ERROR frame followed by the close of the transport
// and returns the ERROR.
func (t *Transport) ExpectError(tb testing.TB) *frame.Frame {
	tb.Helper()
	f := t.Expect(tb, frame.ERROR)
	t.WaitClosed(tb)
	return f
}

// NoFrame fails tb if a frame arrives within d.
func (t *Transport) NoFrame(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case f := <-t.frames:
		tb.Fatalf("stomptest: unexpected %s frame (body %q)", f.Command, f.Body)
	case <-time.After(d):
	}
}

// TryNext returns a frame already written, or nil.
func (t *Transport) TryNext() *frame.Frame {
	select {
	case f := <-t.frames:
		return f
	default:
		return nil
	}
}

// WaitClosed waits for the server to close the transport and returns the
// close code and reason.
func (t *Transport) WaitClosed(tb testing.TB) (int, string) {
	tb.Helper()
	select {
	case <-t.closed:
	case <-time.After(Wait):
		tb.Fatalf("stomptest: transport not closed within %s", Wait)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.code, t.reason
}

// IsClosed reports whether the transport was closed.
func (t *Transport) IsClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

// Closed is closed when the transport is.
func (t *Transport) Closed() <-chan struct{} { return t.closed }

// Err is a frame written by the server that did not parse, if any.
func (t *Transport) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
