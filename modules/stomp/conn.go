package stomp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"golang.org/x/time/rate"

	"github.com/chat-service/chat/modules/ident"
)

// conn is one STOMP connection: a reader loop that parses and handles
// client frames, a writer loop that drains the bounded outbound queue, and
// the subscriptions the Hub delivers into.
type conn struct {
	h           *Hub
	t           Transport
	id          uint64
	transport   string        // ConnOptions.Transport
	pingPeriod  time.Duration // ConnOptions.PingPeriod
	principal   *Principal    // ConnOptions.Principal until CONNECT
	onConnected func()        // ConnOptions.OnConnected
	ctx         context.Context
	cancel      context.CancelFunc
	logp        atomic.Pointer[connLogger] // built on first use; see lg
	q           outQueue
	stop        func() bool // stops the AfterFunc watching a cancellable parent context; nil none

	// Reader loop only (user is also read by deliveries, which see the
	// connection only after it is registered under that user).
	dec            *Decoder
	connected      bool
	version        Version
	user           string
	logUser        atomic.Pointer[string] // user for the logger, set at CONNECT
	registeredUser string                 // the users registry key, removed on cleanup
	participant    map[string]bool        // participation per session (true: checked; false: removed by a members event); guarded by mu; nil until one
	typing         *rate.Limiter          // created at the first typing SEND
	tok            tokenState             // token expiry and its warning (refresh.go)

	mu     sync.Mutex // guards subscriptions and their delivery state
	subs   []*subscription
	queues [destErrors - destMessages + 1][]*subscription // the /user/queue/* subscriptions, by queueIndex
	gone   bool                                           // cleaned up: deliveries are ignored

	lastRead     atomic.Int64   // unix nanoseconds of the last inbound byte
	partialSince atomic.Int64   // unix nanoseconds since an incomplete frame is buffered; 0 none
	writer       sync.WaitGroup // the writer, until it has closed the transport
}

func newConn(parent context.Context, h *Hub, t Transport, opts ConnOptions) *conn {
	ctx, cancel := context.WithCancel(parent)
	id := h.nextID.Add(1)
	c := &conn{
		h: h, t: t, id: id, ctx: ctx, cancel: cancel,
		transport: opts.Transport, pingPeriod: opts.PingPeriod, principal: opts.Principal,
		onConnected: opts.OnConnected,
		dec:         NewDecoder(h.o.Limits.MaxFrameBytes),
		version:     V10,
	}
	c.q.init(h.o.Limits.OutboundQueue, h.o.QueueBytes)
	if parent.Done() != nil {
		// The writer waits on its queue alone; a cancelled parent closes
		// the connection through it.
		c.stop = context.AfterFunc(parent, func() {
			c.q.closeWith(closeItem(CloseGoingAway, "server shutting down"), true)
		})
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// connLogger is the connection's logger and the user it was narrowed with.
type connLogger struct {
	l    *slog.Logger
	user *string
}

// lg returns the hub's logger narrowed with conn_id, transport and, after
// CONNECT, user_id. It is built on first use: most connections never log,
// and a narrowed slog handler costs memory on every idle connection.
func (c *conn) lg() *slog.Logger {
	u := c.logUser.Load()
	if cl := c.logp.Load(); cl != nil && cl.user == u {
		return cl.l
	}
	args := []any{"conn_id", c.id, "transport", c.transport}
	if u != nil {
		args = append(args, "user_id", *u)
	}
	l := c.h.log.With(args...)
	c.logp.Store(&connLogger{l: l, user: u})
	return l
}

// debug logs at debug level without building the logger when that level is off.
func (c *conn) debug(msg string, args ...any) {
	if c.h.log.Enabled(context.Background(), slog.LevelDebug) {
		c.lg().Debug(msg, args...)
	}
}

// readLoop reads and handles client frames until the connection ends.
// With fresh set, it returns true after a batch of input that held a frame
// (not a heart-beat): the caller goes on on a fresh goroutine (Hub.Start).
func (c *conn) readLoop(fresh bool) (again bool) {
	for {
		data, err := c.t.Read()
		if err != nil {
			switch {
			case errors.Is(err, ErrBinaryMessage):
				c.fail(ReasonBinary.With(ErrBinaryMessage.Error()), "")
			case errors.Is(err, ErrMessageTooLarge):
				c.fail(errTooLarge(c.h.o.Limits.MaxFrameBytes), "")
			default:
				c.q.abortNow() // the peer is gone or the writer closed the transport
			}
			return false
		}
		now := time.Now().UnixNano()
		c.lastRead.Store(now)
		c.dec.writeOwned(data)
		handled := false
		for {
			f, err := c.dec.Next()
			if err != nil {
				c.fail(err, "")
				return false
			}
			if f == nil {
				break
			}
			handled = true
			if done := c.handle(f); done {
				return false
			}
		}
		if !c.dec.Pending() {
			c.partialSince.Store(0)
		} else if c.partialSince.Load() == 0 {
			c.partialSince.Store(now)
			c.q.wake() // the writer times the incomplete frame
		}
		if fresh && handled {
			return true
		}
	}
}

// fail ends the connection with an ERROR frame for err.
func (c *conn) fail(err error, receipt string) {
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		pe = ReasonInternal.With("")
		c.lg().Error("stomp connection failed", "error", err)
	} else {
		c.lg().Info("stomp protocol error", "reason", pe.Message, "detail", pe.Detail)
	}
	c.q.closeWith(errorItem(pe, receipt), false)
}

// handle processes one client frame; done means the reader stops.
func (c *conn) handle(f *frame.Frame) (done bool) {
	if in := c.h.m.in[f.Command]; in != nil {
		in.Inc()
	}
	receipt, _ := f.Header.Contains(frame.Receipt)
	if !c.connected {
		if f.Command != frame.CONNECT && f.Command != frame.STOMP {
			c.fail(ReasonExpectedConnect.Withf("the first frame must be CONNECT or STOMP, got %s", f.Command), receipt)
			return true
		}
		if err := c.onConnect(f); err != nil {
			c.fail(err, receipt)
			return true
		}
		return false
	}
	var err error
	switch f.Command {
	case frame.SEND:
		var handled bool
		handled, err = c.onSend(f, receipt)
		if err == nil && handled {
			return false // onSend answered (RECEIPT or a problem) itself
		}
	case frame.SUBSCRIBE:
		err = c.onSubscribe(f)
	case frame.UNSUBSCRIBE:
		err = c.onUnsubscribe(f)
	case frame.ACK, frame.NACK:
		// Every subscription is ack:auto in effect; ACK and NACK are accepted and ignored.
	case frame.DISCONNECT:
		if receipt != "" {
			c.receipt(receipt)
		}
		c.q.closeWith(closeItem(CloseNormal, "disconnect"), false)
		return true
	case frame.BEGIN, frame.COMMIT, frame.ABORT:
		err = ReasonNoTransactions.Withf("%s is not supported by this server", f.Command)
	case frame.CONNECT, frame.STOMP:
		err = ReasonAlreadyConnected.Withf("a second %s on one connection", f.Command)
	default:
		err = ReasonUnexpectedFrame.Withf("%s is a server frame", f.Command)
	}
	if err != nil {
		c.fail(err, receipt)
		return true
	}
	if receipt != "" {
		c.receipt(receipt)
	}
	return false
}

// receipt queues a RECEIPT; a consumer too slow to take it is disconnected.
func (c *conn) receipt(id string) {
	c.push(outItem{kind: kindReceipt, receipt: id}, 0)
}

// push queues it and disconnects a slow consumer. The caller may hold c.mu.
func (c *conn) push(it outItem, extra int) {
	switch c.q.push(it, extra) {
	case overflow:
		c.slowConsumer()
	case dropped:
		if it.transient() {
			c.h.m.droppedTyping.Inc()
		}
	}
}

// errSlowConsumer is the ERROR a connection that cannot keep up gets.
var errSlowConsumer = ReasonSlowConsumer.With("the outbound queue is full; the client does not read fast enough")

// slowConsumer replaces the backlog with an ERROR and closes the connection.
func (c *conn) slowConsumer() {
	if c.q.closeWith(errorItem(errSlowConsumer, ""), true) {
		c.h.m.slowConsumers.Inc()
		c.lg().Info("slow consumer disconnected")
	}
}

type connectedInfo struct {
	version Version
	hbOut   time.Duration // the server sends a heart-beat after this much silence; 0 never
	hbIn    time.Duration // the client must send something at least this often; 0 unchecked
	expires time.Time
	header  *frame.Header
}

func (c *conn) onConnect(f *frame.Frame) error {
	accept, present := f.Header.Contains(frame.AcceptVersion)
	v, ok := negotiateVersion(accept, present)
	if !ok {
		return ReasonUnsupported.Withf("this server speaks STOMP %s", SupportedVersions)
	}
	c.version = v
	c.dec.SetVersion(v)

	var p Principal
	if c.principal != nil {
		p = *c.principal
		c.principal = nil
	} else {
		token := bearer(f.Header)
		if token == "" {
			return ReasonUnauthorized.With("no token: send Authorization: Bearer <jwt> in CONNECT")
		}
		var err error
		if p, err = c.h.o.Auth.Authenticate(token); err != nil {
			return ReasonUnauthorized.With("the token is invalid or expired")
		}
	}
	if !p.ExpiresAt.IsZero() && !time.Now().Before(p.ExpiresAt) {
		return ReasonTokenExpired.With("the token has expired; reconnect with a fresh one")
	}
	cx, cy := time.Duration(0), time.Duration(0)
	if hb, ok := f.Header.Contains(frame.HeartBeat); ok && v > V10 {
		var err error
		if cx, cy, err = frame.ParseHeartBeat(strings.TrimSpace(hb)); err != nil {
			return ReasonInvalidHeartBeat.With("heart-beat must be two non-negative integers, e.g. 10000,10000")
		}
	}
	info := &connectedInfo{version: v, expires: p.ExpiresAt}
	lim := c.h.o.Limits
	sx, sy := time.Duration(0), time.Duration(0)
	if cy > 0 { // the client wants heart-beats from us
		sx = min(max(cy, lim.HeartbeatMin), lim.HeartbeatMax)
		info.hbOut = sx
	}
	if cx > 0 { // the client can send heart-beats
		sy = min(max(cx, lim.HeartbeatMin), lim.HeartbeatMax)
		info.hbIn = max(cx, sy)
	}
	c.user = p.UserID
	c.logUser.Store(&c.user) // c.user is not written again
	if !c.h.users.add(c.user, c, lim.MaxConnsPerUser) {
		return ReasonTooManyConns.With("this user has the maximum number of connections open")
	}
	c.registeredUser = p.UserID
	c.h.observe(c.user, true) // presence (observe.go)
	c.setExpiry(p.ExpiresAt)  // the writer enforces it; refresh.go warns and moves it
	c.connected = true
	if c.onConnected != nil {
		c.onConnected()
	}
	c.lastRead.Store(time.Now().UnixNano())
	info.header = frame.NewHeader(
		frame.Version, v.String(),
		frame.HeartBeat, fmtMillis(sx)+","+fmtMillis(sy),
		frame.Server, c.h.o.Server,
		"user-name", p.UserID,
		frame.Session, formatUint(c.id),
	)
	c.q.pushControl(outItem{kind: kindConnected, ctl: &control{connected: info}})
	c.debug("stomp connected", "version", v.String())
	return nil
}

// bearer takes the token from a CONNECT's Authorization header, with or
// without the "Bearer " scheme.
func bearer(h *frame.Header) string {
	v, ok := h.Contains("Authorization")
	if !ok {
		v = h.Get("authorization")
	}
	return ident.TokenOf(v)
}

// cleanup removes the connection from the Hub once both loops have exited.
func (c *conn) cleanup() {
	if c.stop != nil {
		c.stop()
	}
	c.mu.Lock()
	c.gone = true
	subs := c.subs
	for _, s := range subs {
		s.active.Store(false)
	}
	c.subs = nil
	c.mu.Unlock()
	for _, s := range subs {
		if s.kind == destTopic {
			c.h.sessions.remove(s.sessionID, s)
		}
	}
	if c.registeredUser != "" {
		c.h.users.remove(c.registeredUser, c)
		c.h.observe(c.registeredUser, false)
	}
	c.tok.stop() // refresh.go
	c.h.m.subscriptions.Sub(float64(len(subs)))
}
