// Package stomp is the STOMP 1.0/1.1/1.2 side of the real-time gateway: the
// frame codec (go-stomp's frame types, a bounded re-assembling decoder), the
// per-connection state machine with its reader and writer loops, the
// destination rules of docs/api.md and the Hub that fans relay events out to
// local subscriptions. It never touches a socket: WebSocket and SockJS
// carriers (package gateway) and test fakes (stomptest) implement Transport.
package stomp

import (
	"context"
	"errors"
	"time"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/ident"
)

// Transport carries STOMP bytes for one connection.
type Transport interface {
	// Read blocks for the next inbound message, which then belongs to the
	// caller (the decoder parses it in place). Only the reader loop calls
	// it. A binary message is reported as ErrBinaryMessage, a message over
	// the carrier's own limit as ErrMessageTooLarge; any other error ends
	// the connection without a reply.
	Read() ([]byte, error)
	// Write sends one outbound message: an encoded frame or a heart-beat
	// EOL. Only the writer loop calls it; p is not retained. Write sets its
	// own deadline, so that a peer that does not read cannot block it.
	Write(p []byte) error
	// Ping sends a carrier-level keep-alive (a WebSocket ping), or does
	// nothing. Only the writer loop calls it.
	Ping() error
	// Close closes the carrier, sending code and reason where it can
	// (WebSocket close codes). It must unblock a pending Read and be
	// idempotent. Only the writer loop calls it.
	Close(code int, reason string) error
}

// Batcher is implemented by a Transport that can coalesce the writes of a
// batch into fewer system calls. The writer brackets every batch of two or
// more queued frames with BeginBatch and EndBatch; EndBatch sends what the
// batch wrote (an error there ends the connection). Close must send
// anything still buffered first.
type Batcher interface {
	BeginBatch()
	EndBatch() error
}

// ReadWaiter is implemented by a Transport that can wait for input without
// reading it. Between client frames the reader (Hub.Start) waits there, on
// a fresh goroutine, and calls Read only once input is there: a parked
// reader then needs a stack of the smallest size, where waiting inside a
// WebSocket library's Read needs twice that for every idle connection.
// WaitReadable returns nil when Read would not block (input, an error or
// the end of input is there); an error ends the connection.
type ReadWaiter interface {
	WaitReadable() error
}

// Backlogger is implemented by a Transport whose Write only buffers, the
// bytes leaving later when the peer collects them (SockJS polling and
// streaming sessions). Backlog is what Write accepted that the peer has not
// collected yet; the writer counts it against the connection's byte bound
// (Options.QueueBytes), so a peer that stops collecting is a slow consumer
// as it would be on a socket.
type Backlogger interface {
	Backlog() int
}

// WebSocket close codes used when a connection ends.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseProtocolError = 1002
	ClosePolicy        = 1008
	CloseTooBig        = 1009
	CloseTryAgainLater = 1013
	CloseInternalError = 1011
)

// Errors a Transport's Read reports for messages STOMP cannot take.
var (
	ErrBinaryMessage   = errors.New("binary messages are not supported; send STOMP frames as text")
	ErrMessageTooLarge = errors.New("message too large")
)

// Principal is the authenticated user of a connection: ident's one
// definition, the same type auth.Principal names.
type Principal = ident.Principal

// Authenticator verifies a bearer token taken from a CONNECT frame.
type Authenticator interface {
	Authenticate(token string) (Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(token string) (Principal, error)

// Authenticate implements Authenticator.
func (f AuthenticatorFunc) Authenticate(token string) (Principal, error) { return f(token) }

// Chat is the part of chat.Service the gateway calls.
type Chat interface {
	CheckSend(ctx context.Context, userID string, req chat.SendRequest) error
	MarkRead(ctx context.Context, userID, sessionID string, seq int64) error
	Typing(ctx context.Context, userID, sessionID string) error
	IsParticipant(ctx context.Context, sessionID, userID string) (bool, error)
	Replay(ctx context.Context, userID, sessionID string, afterSeq int64) ([]chat.Message, bool, error)
	// Recover and ActiveSessions serve Resync (resync.go): the server's
	// reads, not counted against the user's read budget.
	Recover(ctx context.Context, userID, sessionID string, afterSeq int64, since time.Time) ([]chat.Message, bool, error)
	ActiveSessions(ctx context.Context, userID string, since time.Time, limit int) ([]chat.SessionSeq, error)
	LastSeqs(ctx context.Context, sessionIDs []string) (map[string]int64, error)
	EditMessage(ctx context.Context, userID string, req chat.EditRequest) (chat.Message, error)
	DeleteMessage(ctx context.Context, userID, sessionID string, seq int64) error
}

var _ Chat = (*chat.Service)(nil)

// Commands accepts sends into the durable command queue; Submit returns
// once the command is durably queued.
type Commands interface {
	Submit(ctx context.Context, userID string, req chat.SendRequest) error
}

// ProtocolError is a client mistake that ends the connection with an ERROR
// frame: Message goes into the message header, Detail into the body.
type ProtocolError struct {
	Message string
	Detail  string
	Code    int // WebSocket close code after the ERROR
}

func (e *ProtocolError) Error() string {
	if e.Detail == "" {
		return e.Message
	}
	return e.Message + ": " + e.Detail
}

func errMalformed(detail string) *ProtocolError { return ReasonMalformed.With(detail) }

func errTooLarge(max int) *ProtocolError {
	return ReasonFrameTooLarge.Withf("the limit is %d bytes", max)
}
