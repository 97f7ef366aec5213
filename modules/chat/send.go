package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// SendRequest is a message to send, from REST or from STOMP /app/chat.send.
type SendRequest struct {
	SessionID       string `json:"sessionId,omitempty"`
	Content         string `json:"content"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
}

// QueuedSend is a send taken from the durable command queue: who sent it,
// what, and the message id fixed when it was queued (so that a command
// delivered twice is stored once).
type QueuedSend struct {
	UserID    string
	MessageID string
	Request   SendRequest
}

// batchTimeout bounds the storing of one batch, which serves many callers
// and so runs on a context of its own.
const batchTimeout = 10 * time.Second

// Send validates, rate-limits and stores a message; created is false for an
// idempotent retry, which returns the original message.
func (s *Service) Send(ctx context.Context, userID string, req SendRequest) (Message, bool, error) {
	if err := s.validateSend(req); err != nil {
		return Message{}, false, err
	}
	if err := s.limiter.Allow(userID); err != nil {
		return Message{}, false, err
	}
	return s.store1(ctx, userID, req)
}

// CheckSend makes every check that can be made at once on a send (shape,
// size, rate, participation) without storing it: the STOMP gateway calls it
// before it accepts the command into the durable queue. It spends a token of
// the sender's rate budget.
func (s *Service) CheckSend(ctx context.Context, userID string, req SendRequest) error {
	if err := s.validateSend(req); err != nil {
		return err
	}
	if err := s.limiter.Allow(userID); err != nil {
		return err
	}
	ok, err := s.IsParticipant(ctx, req.SessionID, userID)
	if err != nil {
		return err
	}
	if !ok {
		return notFound()
	}
	return nil
}

// SendQueued stores sends that CheckSend accepted earlier (the command
// queue's consumer), in order, in as few transactions as max_batch allows.
// It validates them again, since the queue is only as trusted as its
// producers, but spends no rate budget. Each send has its own outcome; err
// is for a failure of the database, after which none of the batch it hit or
// any later one was stored.
func (s *Service) SendQueued(ctx context.Context, sends []QueuedSend) ([]Appended, error) {
	out := make([]Appended, len(sends))
	var (
		batch []*pendingSend
		at    []int // batch[i] answers out[at[i]]
	)
	for i, q := range sends {
		p, err := s.prepare(ctx, q.UserID, q.MessageID, q.Request)
		if err != nil && (errors.Is(err, ErrUnavailable) || ctx.Err() != nil) {
			// Storing the others now could put a later send of the same
			// session before this one: the whole batch waits.
			return nil, fmt.Errorf("send queued: %w", err)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		p.nm.Redelivered = q.MessageID != ""
		batch, at = append(batch, p), append(at, i)
	}
	for start := 0; start < len(batch); start += s.maxBatch {
		chunk := batch[start:min(start+s.maxBatch, len(batch))]
		if err := s.storeGroup(ctx, chunk); err != nil {
			return nil, err
		}
		for j, p := range chunk {
			out[at[start+j]] = p.res
		}
	}
	return out, nil
}

// sendGroup is sends that go into one transaction together, in order: a
// REST send alone, or a batch of the command queue, which is never split
// (so that a session's commands keep their order) but may share its
// transaction with other groups (other shards' batches, REST sends).
type sendGroup struct {
	ctx   context.Context
	sends []*pendingSend
	err   error         // the whole group's: the database failed
	done  chan struct{} // closed once err and every send's res are set
}

// storeGroup stores sends in order: through group commit when it is on,
// else in a transaction of their own. The error is the whole group's.
func (s *Service) storeGroup(ctx context.Context, sends []*pendingSend) error {
	if s.sends == nil {
		return s.storeAll(ctx, sends)
	}
	g := &sendGroup{ctx: ctx, sends: sends, done: make(chan struct{})}
	if err := s.sends.submit(ctx, g); err != nil {
		return s.unsent(sends[0].nm.SessionID, err)
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		// It may still be stored: a retry with the same clientMessageId
		// (or, for a command, its message id) finds it.
		return s.unsent(sends[0].nm.SessionID, ctx.Err())
	case <-s.sends.closed():
		select {
		case <-g.done: // stored by a batch that was running
			return g.err
		default:
			return s.unsent(sends[0].nm.SessionID, errClosed)
		}
	}
}

// pendingSend is a send on its way through group commit.
type pendingSend struct {
	ctx     context.Context
	nm      NewMessage
	ps      []string // the session's participants, who the event goes to
	version int64    // ps's membership version
	sender  *Sender
	res     Appended
}

// prepare checks a valid send against the session and gives it an id (the
// given one, or a new one) and its sender's profile.
func (s *Service) prepare(ctx context.Context, userID, id string, req SendRequest) (*pendingSend, error) {
	if err := s.validateSend(req); err != nil {
		return nil, err
	}
	// Participants route the event. Reading them before the transaction
	// keeps it on one connection (a second read inside it could exhaust the
	// pool under concurrent sends); the store checks membership again under
	// the session's lock.
	ml, err := s.memberList(ctx, req.SessionID)
	if err != nil {
		return nil, s.mapNotFound(fmt.Errorf("send to session %s: %w", req.SessionID, err))
	}
	if !slices.Contains(ml.ids, userID) {
		return nil, notFound()
	}
	if id == "" {
		id = uuid.Must(uuid.NewV7()).String()
	}
	return &pendingSend{
		ctx: ctx, ps: ml.ids, version: ml.version, sender: s.sender(ctx, userID),
		nm: NewMessage{
			ID: id, SessionID: req.SessionID, SenderID: userID,
			ClientMessageID: req.ClientMessageID, Content: req.Content, CreatedAt: Now(),
		},
	}, nil
}

// store1 stores one send: through group commit when it is on.
func (s *Service) store1(ctx context.Context, userID string, req SendRequest) (Message, bool, error) {
	p, err := s.prepare(ctx, userID, "", req)
	if err != nil {
		return Message{}, false, err
	}
	if s.sends == nil {
		msg, created, err := s.store.AppendMessage(ctx, p.nm, func(ctx context.Context, tx *sql.Tx, m Message) error {
			ev, err := s.routed(ctx, tx, p, m, nil)
			if err != nil {
				return err
			}
			return s.events.Stored(ctx, tx, ev)
		})
		if err != nil {
			return Message{}, false, s.mapNotFound(fmt.Errorf("send to session %s: %w", req.SessionID, err))
		}
		msg.Sender = p.sender
		return msg, created, nil
	}
	if err := s.storeGroup(ctx, []*pendingSend{p}); err != nil {
		return Message{}, false, err
	}
	if p.res.Err != nil {
		return Message{}, false, p.res.Err
	}
	return p.res.Message, p.res.Created, nil
}

// unsent is the error of a send that was not stored for want of time or
// because the service is stopping: the client may retry.
func (s *Service) unsent(sessionID string, err error) error {
	return fmt.Errorf("%w: send to session %s: %w", ErrUnavailable, sessionID, err)
}

// storeBatch is the group commit's run: it stores the groups whose callers
// still wait, in one transaction, and answers each.
func (s *Service) storeBatch(batch []*sendGroup) {
	var (
		live  []*sendGroup
		sends []*pendingSend
	)
	for _, g := range batch {
		if g.ctx.Err() != nil {
			close(g.done) // its caller is gone; nothing stored
			continue
		}
		live, sends = append(live, g), append(sends, g.sends...)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	err := s.storeAll(ctx, sends)
	for _, g := range live {
		g.err = err
		close(g.done)
	}
}

// groupSize is a group's weight in a batch: its sends.
func groupSize(g *sendGroup) int { return len(g.sends) }

// storeAll stores sends in one transaction with their events, and sets
// each one's res; the error is the whole batch's.
func (s *Service) storeAll(ctx context.Context, sends []*pendingSend) error {
	items := make([]NewMessage, len(sends))
	byID := make(map[string]*pendingSend, len(sends))
	for i, p := range sends {
		items[i], byID[p.nm.ID] = p.nm, p
	}
	res, err := s.store.AppendMessages(ctx, items, func(ctx context.Context, tx *sql.Tx, stored []Message) error {
		evs := make([]Event, len(stored))
		var fresh map[string][]string // participants read in tx, per session with a stale list
		for i, m := range stored {
			ev, err := s.routed(ctx, tx, byID[m.ID], m, &fresh)
			if err != nil {
				return err
			}
			evs[i] = ev
		}
		return s.events.Stored(ctx, tx, evs...)
	})
	if err != nil {
		return fmt.Errorf("store %d messages: %w", len(sends), err)
	}
	for i, p := range sends {
		p.res = res[i]
		if p.res.Err != nil {
			p.res.Err = s.mapNotFound(fmt.Errorf("send to session %s: %w", p.nm.SessionID, p.res.Err))
			continue
		}
		p.res.Message.Sender = p.sender
	}
	return nil
}

// routed is the message event of m, stored by p, routed to p's
// participants, or, when the membership changed since p read them (the
// versions differ), to the participants read in tx (then remembered in
// *fresh for the rest of a batch, and forgotten from the cache).
func (s *Service) routed(ctx context.Context, tx *sql.Tx, p *pendingSend, m Message, fresh *map[string][]string) (Event, error) {
	m.Sender = p.sender
	ev := Event{Type: EventMessage, SessionID: m.SessionID, Message: &m, Participants: p.ps}
	if m.MembersVersion == p.version {
		return ev, nil
	}
	if fresh != nil && *fresh != nil {
		if ps, ok := (*fresh)[m.SessionID]; ok {
			ev.Participants = ps
			return ev, nil
		}
	}
	ps, err := s.store.ParticipantsTx(ctx, tx, m.SessionID)
	if err != nil {
		return Event{}, err
	}
	s.members.forget(m.SessionID)
	if fresh != nil {
		if *fresh == nil {
			*fresh = map[string][]string{}
		}
		(*fresh)[m.SessionID] = ps
	}
	ev.Participants = ps
	return ev, nil
}

func (s *Service) validateSend(req SendRequest) error {
	if !ValidSessionID(req.SessionID) {
		return invalid("invalid_session_id", "session id must be a UUID")
	}
	if !utf8.ValidString(req.Content) {
		return invalid("invalid_content", "content must be valid UTF-8")
	}
	if req.Content == "" {
		return invalid("invalid_content", "content must not be empty")
	}
	if hasControl(req.Content) {
		return invalid("invalid_content", "content must not contain NUL or control characters other than tab, LF and CR")
	}
	if len(req.Content) > s.limits.MaxMessageBytes {
		return &Error{Kind: ErrTooLarge, Code: "content_too_long", Detail: fmt.Sprintf("content is %d bytes, the limit is %d", len(req.Content), s.limits.MaxMessageBytes)}
	}
	if req.ClientMessageID != "" && !clientIDPattern.MatchString(req.ClientMessageID) {
		return invalid("invalid_client_message_id", "clientMessageId must be 1 to 64 of [A-Za-z0-9._:-]")
	}
	return nil
}
