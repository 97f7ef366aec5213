package stomp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

// Options configure a Hub. Zero limits take the documented defaults.
type Options struct {
	Chat       Chat
	Commands   Commands
	Auth       Authenticator // verifies CONNECT tokens
	Limits     config.Limits
	Features   config.Features
	Recovery   config.Recovery
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	Log        *slog.Logger

	Server         string        // CONNECTED server header; default "chat-service"
	QueueBytes     int           // byte bound of a connection's outbound queue; default 1 MiB
	ConnectTimeout time.Duration // time allowed before CONNECT; default 10s
	CallTimeout    time.Duration // bound on each Chat or Commands call; default 10s
	PartialTimeout time.Duration // time an incomplete frame may sit; default 30s
	TypingEvery    time.Duration // a connection's typing rate: one per this, burst 3; default 500ms
}

func (o *Options) defaults() {
	l := &o.Limits
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = 65536
	}
	if l.MaxSubscriptions <= 0 {
		l.MaxSubscriptions = 256
	}
	if l.OutboundQueue <= 0 {
		l.OutboundQueue = 256
	}
	if l.HeartbeatMin <= 0 {
		l.HeartbeatMin = time.Second
	}
	if l.HeartbeatMax < l.HeartbeatMin {
		l.HeartbeatMax = max(60*time.Second, l.HeartbeatMin)
	}
	if o.Recovery.MaxMessages <= 0 {
		o.Recovery.MaxMessages = 1000
	}
	if o.Server == "" {
		o.Server = "chat-service"
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 1 << 20
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.PartialTimeout <= 0 {
		o.PartialTimeout = 30 * time.Second
	}
	if o.TypingEvery <= 0 {
		o.TypingEvery = 500 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Hub owns this instance's STOMP connections: it serves each one over its
// Transport and fans relay events out to their subscriptions. It
// implements messaging.Hub.
type Hub struct {
	o   Options
	m   *metrics
	log *slog.Logger

	sessions *registry // session id → connections subscribed to its topic
	users    *registry // user id → connected connections

	nextID  atomic.Uint64
	mu      sync.Mutex // guards conns and closing
	conns   map[*conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

// NewHub checks o and returns a Hub.
func NewHub(o Options) (*Hub, error) {
	if o.Chat == nil || o.Commands == nil || o.Auth == nil {
		return nil, errors.New("stomp: Chat, Commands and Auth are required")
	}
	o.defaults()
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Hub{
		o: o, m: m, log: o.Log,
		sessions: newRegistry(), users: newRegistry(),
		conns: make(map[*conn]struct{}),
	}, nil
}

// ConnOptions describe one connection to Serve.
type ConnOptions struct {
	// Principal is set when the carrier authenticated the user before the
	// connection (upgrade header or access_token); CONNECT's Authorization
	// header is then ignored. Nil: CONNECT must carry a token.
	Principal *Principal
	// PingPeriod is how often the writer calls Transport.Ping; 0 never.
	PingPeriod time.Duration
	// Transport names the carrier in logs ("websocket", "sockjs").
	Transport  string
	RemoteAddr string
}

// ErrShuttingDown is returned by Serve once Shutdown has begun.
var ErrShuttingDown = errors.New("stomp: hub is shutting down")

// Serve runs one connection until it ends: the calling goroutine becomes
// the reader loop, a second goroutine the writer loop. It returns after
// both have exited and the transport is closed. ctx bounds the connection;
// it is normally context.WithoutCancel of the upgrade request's context.
func (h *Hub) Serve(ctx context.Context, t Transport, opts ConnOptions) error {
	c := newConn(ctx, h, t, opts)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		_ = t.Close(CloseGoingAway, "server shutting down") // nothing was served; the close error says nothing new
		return ErrShuttingDown
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	h.m.connections.Inc()
	defer func() {
		c.cleanup()
		h.m.connections.Dec()
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.wg.Done()
	}()
	c.run()
	return nil
}

// Shutdown refuses new connections, asks every connection to close (a
// WebSocket close frame, 1001) and waits for their loops until ctx ends;
// connections still open then are aborted.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.q.closeWith(&outItem{kind: kindClose, code: CloseGoingAway, reason: "server shutting down"}, false)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.q.abortNow()
	}
	select {
	case <-done:
		return nil
	case <-time.After(time.Second):
		return errors.New("stomp: connections still open after shutdown deadline")
	}
}

// Connections is the number of open connections.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// payload is an event encoded once and shared by every connection it goes to.
type payload struct {
	body        []byte
	contentType string
	queue       destKind // the /user/queue/* it goes to
	sessionID   string
	seq         int64 // message events: the message's seq; else 0
	transient   bool  // typing: dropped first under back-pressure
	except      string
	isError     bool
}

const (
	contentJSON    = "application/json"
	contentProblem = problem.ContentType
)

func newPayload(ev *chat.Event) (*payload, error) {
	p := &payload{contentType: contentJSON, sessionID: ev.SessionID, except: ev.Except}
	var err error
	switch ev.Type {
	case chat.EventMessage:
		if ev.Message == nil {
			return nil, errors.New("message event without a message")
		}
		p.queue, p.seq = destMessages, ev.Message.Seq
		if p.sessionID == "" {
			p.sessionID = ev.Message.SessionID
		}
	case chat.EventTyping:
		p.queue, p.transient = destEvents, true
	case chat.EventSession:
		// Only to participants' /user/queue/events: the relay publishes a
		// created session once per participant, each naming only that one.
		p.queue, p.sessionID = destEvents, ""
	case chat.EventError:
		if ev.Problem == nil {
			return nil, errors.New("error event without a problem")
		}
		p.queue, p.isError, p.contentType, p.sessionID = destErrors, true, contentProblem, ""
		p.body, err = json.Marshal(ev.Problem)
		return p, err
	default: // read, resync and types added later go where events go
		p.queue = destEvents
	}
	p.body, err = json.Marshal(ev)
	return p, err
}

// Deliver fans ev out to the local subscriptions it concerns. It never
// blocks: each connection's bounded queue takes it or the connection is
// disconnected as a slow consumer. Message events go to
// /topic/session.{id} and to every participant's /user/queue/messages;
// read and typing events to the topic and /user/queue/events (typing not
// to the typist); session events to /user/queue/events only; error events
// to Participants[0]'s /user/queue/errors only.
func (h *Hub) Deliver(ev chat.Event) {
	p, err := newPayload(&ev)
	if err != nil {
		h.log.Error("drop undeliverable event", "type", ev.Type, "session_id", ev.SessionID, "error", err)
		return
	}
	if p.isError {
		if len(ev.Participants) > 0 {
			for _, c := range h.users.get(ev.Participants[0]) {
				c.deliverUser(p)
			}
		}
		return
	}
	if p.sessionID != "" {
		for _, c := range h.sessions.get(p.sessionID) {
			c.deliverTopic(p)
		}
	}
	for i, u := range ev.Participants {
		if u == p.except || duplicateBefore(ev.Participants, i) {
			continue
		}
		for _, c := range h.users.get(u) {
			c.deliverUser(p)
		}
	}
}

// duplicateBefore reports whether ps[i] also appears earlier in ps; lists
// are short (participants of one session), a scan beats a map.
func duplicateBefore(ps []string, i int) bool {
	for j := 0; j < i; j++ {
		if ps[j] == ps[i] {
			return true
		}
	}
	return false
}
