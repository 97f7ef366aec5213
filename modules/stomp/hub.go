package stomp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

// Options configure a Hub. Zero durations below take the defaults they name.
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
	QueueBytes     int           // byte bound of a connection's outbound queue; default limits.outbound_queue_bytes
	ConnectTimeout time.Duration // time allowed before CONNECT; default 10s
	CallTimeout    time.Duration // bound on each Chat or Commands call; default 10s
	PartialTimeout time.Duration // time an incomplete frame may sit; default 30s
	TypingEvery    time.Duration // a connection's typing rate: one per this, burst 3; default 500ms
}

// defaults fills what chat.yaml does not set. Limits, Features and Recovery
// are taken as given: config validated them (config.Defaults in tests).
func (o *Options) defaults() {
	if o.Server == "" {
		o.Server = "chat-service"
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = o.Limits.OutboundQueueBytes.Int()
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

	observer atomic.Pointer[observerBox] // connect/disconnect observer (observe.go); nil none

	sessions *registry[*subscription] // session id → topic subscriptions to it
	users    *registry[*conn]         // user id → connected connections

	nextID      atomic.Uint64
	resyncSince atomic.Int64 // Unix ms: the since of the latest Resync
	mu          sync.Mutex   // guards conns and closing
	conns       map[*conn]struct{}
	closing     bool
	wg          sync.WaitGroup
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
		sessions: newRegistry[*subscription](), users: newRegistry[*conn](),
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
	// OnConnected, when set, is called once, from the reader loop, when
	// CONNECT succeeds (the gateway's pre-auth count ends there).
	OnConnected func()
}

// ErrShuttingDown is returned by Serve once Shutdown has begun.
var ErrShuttingDown = errors.New("stomp: hub is shutting down")

// Shutdown refuses new connections, asks every connection to close (a
// WebSocket close frame, 1001) and waits for their loops until ctx ends;
// snapshot returns the open connections; closing also refuses new ones
// from then on (Shutdown, Drain).
func (h *Hub) snapshot(closing bool) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if closing {
		h.closing = true
	}
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	return conns
}

// connections still open then are aborted.
func (h *Hub) Shutdown(ctx context.Context) error {
	conns := h.snapshot(true)
	for _, c := range conns {
		c.q.closeWith(closeItem(CloseGoingAway, "server shutting down"), false)
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

// errShuttingDown is the ERROR every connection gets in a drain.
var errShuttingDown = ReasonShuttingDown.With("this instance is stopping; reconnect (through the load balancer) and subscribe with since-seq")

// Drain refuses new connections, then gives every open connection an ERROR
// "server shutting down" after what was already queued for it, and closes
// it; the closes are spread evenly over spread, so that the clients do not
// all reconnect at once. It waits for the connections' loops until ctx
// ends; a ctx that ends during the spread closes the rest at once.
func (h *Hub) Drain(ctx context.Context, spread time.Duration) error {
	conns := h.snapshot(true)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, c := range conns {
		if ctx.Err() == nil && spread > 0 {
			at := start.Add(spread * time.Duration(i) / time.Duration(len(conns)))
			timer.Reset(time.Until(at))
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		c.q.closeWith(errorItem(errShuttingDown, ""), false)
	}
	if len(conns) > 0 {
		h.log.Info("stomp connections drained", "connections", len(conns), "spread", spread)
	}
	return h.Shutdown(ctx) // waits for the loops; aborts what is left when ctx ends
}

// Connections is the number of open connections.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// payload is an event encoded once and shared by every connection it goes
// to: the JSON body and the MESSAGE headers that do not depend on the
// subscription, ready to copy after a subscription's head.
type payload struct {
	body        []byte // the JSON document; shares tails' memory
	tails       [V12][]byte
	contentType string
	queue       destKind // the /user/queue/* it goes to
	sessionID   string
	seq         int64 // message events: the message's seq; else 0
	transient   bool  // typing: dropped first under back-pressure
	except      string
	isError     bool
	at          int64 // unix nanoseconds when the hub took the event (0: a replay), for the write stage
}

const (
	contentJSON    = "application/json"
	contentProblem = problem.ContentType
)

func newPayload(ev *chat.Event) (*payload, error) {
	p := &payload{contentType: contentJSON, sessionID: ev.SessionID, except: ev.Except}
	var v any = ev
	switch ev.Type {
	case chat.EventMessage:
		if ev.Message == nil {
			return nil, errors.New("message event without a message")
		}
		p.queue, p.seq = destMessages, ev.Message.Seq
		if p.sessionID == "" {
			p.sessionID = ev.Message.SessionID
		}
	case chat.EventEdit, chat.EventDelete:
		p.queue = destMessages // no seq header: seq dedupe is for new messages
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
		v = ev.Problem
	default: // read, resync and types added later go where events go
		p.queue = destEvents
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	p.encode(body)
	return p, nil
}

// encode builds the tails: content-type, content-length, for messages seq
// and session-id, the blank line, body and NUL. One tail serves every
// version unless the session id needs escaping.
func (p *payload) encode(body []byte) {
	build := func(v Version) []byte {
		b := make([]byte, 0, 64+len(p.contentType)+len(p.sessionID)+len(body))
		b = append(b, "content-type:"...)
		b = append(b, p.contentType...)
		b = append(b, "\ncontent-length:"...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, '\n')
		if p.seq > 0 {
			b = append(b, "seq:"...)
			b = strconv.AppendInt(b, p.seq, 10)
			b = append(b, '\n')
			b = appendHeader(b, "session-id", p.sessionID, v, false)
		}
		b = append(b, '\n')
		b = append(b, body...)
		return append(b, 0)
	}
	t := build(V12)
	p.body = t[len(t)-1-len(body) : len(t)-1]
	p.tails = [V12][]byte{t, t, t}
	if p.seq > 0 && strings.ContainsAny(p.sessionID, "\\\r\n:") {
		p.tails[V10-1], p.tails[V11-1] = build(V10), build(V11)
	}
}

// tail is the tail for version v.
func (p *payload) tail(v Version) []byte { return p.tails[v-1] }

// Deliver fans ev out to the local subscriptions it concerns. It never
// blocks: each connection's bounded queue takes it or the connection is
// disconnected as a slow consumer. Message events go to
// /topic/session.{id} and to every participant's /user/queue/messages;
// read and typing events to the topic and /user/queue/events (typing not
// to the typist); session events to /user/queue/events only; error events
// to Participants[0]'s /user/queue/errors only.
func (h *Hub) Deliver(ev chat.Event) {
	start := time.Now()
	defer h.m.stageHub.Since(start)
	p, err := newPayload(&ev)
	if err != nil {
		h.log.Error("drop undeliverable event", "type", ev.Type, "session_id", ev.SessionID, "error", err)
		return
	}
	p.at = start.UnixNano()
	if ev.Type == chat.EventMembers { // membership.go
		h.forgetMembers(ev.SessionID)
		defer h.membersChanged(&ev)
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
		for _, s := range h.sessions.get(p.sessionID) {
			s.c.deliverTopic(s, p)
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
