package stomptest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/ident"
	"github.com/chat-service/chat/modules/stomp"
)

// Deliverer receives the events the Backend publishes (a *stomp.Hub).
type Deliverer interface{ Deliver(chat.Event) }

// Backend is an in-memory stomp.Chat and stomp.Commands: Submit stores the
// message at once and publishes its event to Hub, the way the command
// queue, the store, the outbox and the relay do together.
type Backend struct {
	mu         sync.Mutex
	sessions   map[string]*session
	hub        Deliverer
	MaxReplay  int                                 // resync past this many missed messages; default 1000
	MaxContent int                                 // content limit; default 4096
	SubmitErr  error                               // returned by Submit when set
	OnReplay   func(sessionID string)              // runs inside Replay, after the messages are read
	OnSubmit   func(userID string, m chat.Message) // runs after a message is stored and published

	ParticipantChecks atomic.Int64 // IsParticipant calls
	Submits           atomic.Int64
	Recovers          atomic.Int64 // Recover calls (resync reads)
}

type session struct {
	participants []string
	messages     []chat.Message
	read         map[string]int64
}

// NewBackend returns an empty Backend.
func NewBackend() *Backend {
	return &Backend{sessions: make(map[string]*session), MaxReplay: 1000, MaxContent: 4096}
}

// SetHub sets where events go.
func (b *Backend) SetHub(h Deliverer) {
	b.mu.Lock()
	b.hub = h
	b.mu.Unlock()
}

// CreateSession makes a session of participants and returns its id.
func (b *Backend) CreateSession(participants ...string) string {
	id := uuid.Must(uuid.NewV7()).String()
	b.CreateSessionWithID(id, participants...)
	return id
}

// CreateSessionWithID makes a session with a given id.
func (b *Backend) CreateSessionWithID(id string, participants ...string) {
	b.mu.Lock()
	b.sessions[id] = &session{participants: slices.Clone(participants), read: map[string]int64{}}
	b.mu.Unlock()
}

// Append stores a message without publishing it (history for replays).
func (b *Backend) Append(sessionID, sender, content string) chat.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.appendLocked(b.sessions[sessionID], sessionID, sender, content, "")
}

// Publish stores a message and publishes its event.
func (b *Backend) Publish(sessionID, sender, content string) chat.Message {
	b.mu.Lock()
	s := b.sessions[sessionID]
	m := b.appendLocked(s, sessionID, sender, content, "")
	ev := chat.Event{Type: chat.EventMessage, SessionID: sessionID, Message: &m, Participants: slices.Clone(s.participants)}
	if b.hub != nil {
		b.hub.Deliver(ev) // under the lock: in seq order
	}
	b.mu.Unlock()
	return m
}

func (b *Backend) appendLocked(s *session, sessionID, sender, content, cmid string) chat.Message {
	m := chat.Message{
		ID: uuid.Must(uuid.NewV7()).String(), SessionID: sessionID, Seq: int64(len(s.messages) + 1),
		SenderID: sender, ClientMessageID: cmid, Content: content, CreatedAt: chat.Now(),
	}
	s.messages = append(s.messages, m)
	return m
}

// Messages returns a session's stored messages.
func (b *Backend) Messages(sessionID string) []chat.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sessions[sessionID].messages)
}

func (b *Backend) member(sessionID, userID string) (*session, error) {
	s := b.sessions[sessionID]
	if s == nil || !slices.Contains(s.participants, userID) {
		return nil, &chat.Error{Kind: chat.ErrNotFound, Code: "session_not_found", Detail: "no such session"}
	}
	return s, nil
}

// CheckSend implements stomp.Chat with the domain's checks.
func (b *Backend) CheckSend(ctx context.Context, userID string, req chat.SendRequest) error {
	if !ident.ValidSessionID(req.SessionID) {
		return &chat.Error{Kind: chat.ErrInvalid, Code: "invalid_session_id", Detail: "session id must be a UUID"}
	}
	if req.Content == "" {
		return &chat.Error{Kind: chat.ErrInvalid, Code: "invalid_content", Detail: "content must not be empty"}
	}
	if len(req.Content) > b.MaxContent {
		return &chat.Error{Kind: chat.ErrTooLarge, Code: "content_too_long", Detail: "content too long"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.member(req.SessionID, userID)
	return err
}

// Submit implements stomp.Commands: store and publish at once.
func (b *Backend) Submit(ctx context.Context, userID string, req chat.SendRequest) error {
	b.Submits.Add(1)
	if b.SubmitErr != nil {
		return b.SubmitErr
	}
	b.mu.Lock()
	s, err := b.member(req.SessionID, userID)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	m := b.appendLocked(s, req.SessionID, userID, req.Content, req.ClientMessageID)
	ev := chat.Event{Type: chat.EventMessage, SessionID: req.SessionID, Message: &m, Participants: slices.Clone(s.participants)}
	// Delivered under the lock, so that events leave in seq order as they
	// do from the relay (Deliver does not block).
	if b.hub != nil {
		b.hub.Deliver(ev)
	}
	hook := b.OnSubmit
	b.mu.Unlock()
	if hook != nil {
		hook(userID, m)
	}
	return nil
}

// MarkRead implements stomp.Chat.
func (b *Backend) MarkRead(ctx context.Context, userID, sessionID string, seq int64) error {
	b.mu.Lock()
	s, err := b.member(sessionID, userID)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	seq = min(seq, int64(len(s.messages)))
	if seq <= s.read[userID] {
		b.mu.Unlock()
		return nil
	}
	s.read[userID] = seq
	ev := chat.Event{Type: chat.EventRead, SessionID: sessionID, UserID: userID, Seq: seq, Participants: slices.Clone(s.participants)}
	h := b.hub
	b.mu.Unlock()
	if h != nil {
		h.Deliver(ev)
	}
	return nil
}

// Typing implements stomp.Chat.
func (b *Backend) Typing(ctx context.Context, userID, sessionID string) error {
	b.mu.Lock()
	s, err := b.member(sessionID, userID)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	ev := chat.Event{Type: chat.EventTyping, SessionID: sessionID, UserID: userID, Participants: slices.Clone(s.participants), Except: userID}
	h := b.hub
	b.mu.Unlock()
	if h != nil {
		h.Deliver(ev)
	}
	return nil
}

// IsParticipant implements stomp.Chat.
func (b *Backend) IsParticipant(ctx context.Context, sessionID, userID string) (bool, error) {
	b.ParticipantChecks.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.member(sessionID, userID)
	return err == nil, nil
}

// Replay implements stomp.Chat.
func (b *Backend) Replay(ctx context.Context, userID, sessionID string, afterSeq int64) ([]chat.Message, bool, error) {
	b.mu.Lock()
	s, err := b.member(sessionID, userID)
	if err != nil {
		b.mu.Unlock()
		return nil, false, err
	}
	var out []chat.Message
	for _, m := range s.messages {
		if m.Seq > afterSeq {
			out = append(out, m)
		}
	}
	hook := b.OnReplay
	b.mu.Unlock()
	if hook != nil {
		hook(sessionID)
	}
	if len(out) > b.MaxReplay {
		return nil, true, nil
	}
	return out, false, nil
}

// Auth is a stomp.Authenticator for tokens made by Token.
var Auth = stomp.AuthenticatorFunc(func(token string) (stomp.Principal, error) {
	rest, ok := strings.CutPrefix(token, "test:")
	if !ok {
		return stomp.Principal{}, errors.New("stomptest: not a test token")
	}
	user, exp, _ := strings.Cut(rest, ":")
	if user == "" {
		return stomp.Principal{}, errors.New("stomptest: no user")
	}
	p := stomp.Principal{UserID: user}
	if exp != "" {
		ms, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return stomp.Principal{}, fmt.Errorf("stomptest: bad expiry: %w", err)
		}
		p.ExpiresAt = time.UnixMilli(ms)
		if !time.Now().Before(p.ExpiresAt) {
			return stomp.Principal{}, errors.New("stomptest: token expired")
		}
	}
	return p, nil
})

// Token is a token Auth accepts for user; a non-zero exp makes it expire.
func Token(user string, exp time.Time) string {
	if exp.IsZero() {
		return "test:" + user
	}
	return "test:" + user + ":" + strconv.FormatInt(exp.UnixMilli(), 10)
}

// Recover implements stomp.Chat.
func (b *Backend) Recover(ctx context.Context, userID, sessionID string, afterSeq int64, since time.Time) ([]chat.Message, bool, error) {
	b.Recovers.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.member(sessionID, userID)
	if err != nil {
		return nil, false, nil // no longer a participant: nothing to recover
	}
	var out []chat.Message
	for _, m := range s.messages {
		if (afterSeq >= 0 && m.Seq > afterSeq) || (afterSeq < 0 && !m.CreatedAt.Before(since)) {
			out = append(out, m)
		}
	}
	if len(out) > b.MaxReplay {
		return nil, true, nil
	}
	return out, false, nil
}

// ActiveSessions implements stomp.Chat.
func (b *Backend) ActiveSessions(ctx context.Context, userID string, since time.Time, limit int) ([]chat.SessionSeq, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []chat.SessionSeq
	for id, s := range b.sessions {
		if !slices.Contains(s.participants, userID) || len(s.messages) == 0 {
			continue
		}
		last := s.messages[len(s.messages)-1]
		if !last.CreatedAt.Before(since) && len(out) < limit {
			out = append(out, chat.SessionSeq{SessionID: id, LastSeq: last.Seq})
		}
	}
	return out, nil
}

// LastSeqs implements stomp.Chat.
func (b *Backend) LastSeqs(ctx context.Context, ids []string) (map[string]int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(ids))
	for _, id := range ids {
		if s, ok := b.sessions[id]; ok {
			out[id] = int64(len(s.messages))
		}
	}
	return out, nil
}
