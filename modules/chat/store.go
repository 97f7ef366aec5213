package chat

import (
	"context"
	"database/sql"
)

// Store persists sessions, members and messages. modules/store implements it
// on SQLite and PostgreSQL. Every method that takes a userID treats a session
// the user is not a participant of exactly like a missing one: ErrNotFound.
type Store interface {
	ChangeStore
	// CreateSession stores a new session. For a direct session (DirectKey set)
	// that already exists it returns the existing one as seen by s.CreatorID
	// and created=false, and inTx is not called. inTx runs inside the
	// creating transaction (the outbox seam); its error rolls everything back.
	CreateSession(ctx context.Context, s NewSession, inTx TxHook[Session]) (sess Session, created bool, err error)
	// Session returns the session as userID sees it (unread, lastMessage).
	Session(ctx context.Context, id, userID string) (Session, error)
	// Sessions lists userID's sessions by last activity, newest first, ties by
	// id descending, starting after the cursor. more is exact.
	Sessions(ctx context.Context, userID string, limit int, after *SessionCursor) (list []Session, more bool, err error)
	// Participants returns the user ids of a session and its membership
	// version (bumped by every change; see Message.MembersVersion), read
	// together; ErrNotFound if none.
	Participants(ctx context.Context, sessionID string) (ids []string, version int64, err error)
	// AppendMessage stores a message with the next seq of its session and
	// moves the sender's lastReadSeq to it, all in one transaction with inTx.
	// When the sender already sent m.ClientMessageID in that session it
	// returns the original and created=false, and inTx is not called.
	AppendMessage(ctx context.Context, m NewMessage, inTx TxHook[Message]) (msg Message, created bool, err error)
	// AppendMessages stores a batch in one transaction (group commit): each
	// item as AppendMessage would, in batch order per session, and inTx once
	// with the messages created. An item's own refusal (not a participant)
	// is its Appended.Err and does not fail the others; err is for the whole
	// batch (the database failed), and then nothing of it was written.
	AppendMessages(ctx context.Context, items []NewMessage, inTx TxHook[[]Message]) (results []Appended, err error)
	// LastSeqs returns the last seq of each of the sessions that exist.
	LastSeqs(ctx context.Context, ids []string) (map[string]int64, error)
	// Messages pages a session's history for a participant, ascending by seq.
	Messages(ctx context.Context, sessionID, userID string, q HistoryQuery) (list []Message, more bool, err error)
	// MarkRead moves userID's lastReadSeq up to min(seq, lastSeq). When it
	// moves, inTx runs in the same transaction with the new value and the
	// session's participants, and changed is true.
	MarkRead(ctx context.Context, sessionID, userID string, seq int64, inTx ReadHook) (newSeq int64, changed bool, err error)
	// Unread lists userID's sessions with unread > 0.
	Unread(ctx context.Context, userID string) ([]UnreadCount, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// TxHook runs inside a store transaction with what was just written.
type TxHook[T any] func(ctx context.Context, tx *sql.Tx, v T) error

// ReadHook runs inside the read-marker transaction.
type ReadHook func(ctx context.Context, tx *sql.Tx, newSeq int64, participants []string) error

// NewSession is a session to create. Participants include the creator,
// deduplicated. DirectKey is set for direct sessions only (see DirectKey).
type NewSession struct {
	ID           string
	Type         string
	Title        *string
	CreatorID    string
	Participants []string
	DirectKey    string
	CreatedAt    Time
}

// NewMessage is a message to append. ClientMessageID may be empty.
type NewMessage struct {
	ID              string
	SessionID       string
	SenderID        string
	ClientMessageID string
	Content         string
	CreatedAt       Time
	// Redelivered: ID was fixed before this attempt (a queued command, which
	// can be delivered twice), so a message with it may be stored already;
	// AppendMessages then answers with that one.
	Redelivered bool
}

// Appended is the outcome of one item of AppendMessages: the message (the
// original for a duplicate) and whether this call created it, or Err.
type Appended struct {
	Message Message
	Created bool
	Err     error
}

// HistoryQuery selects a page of history. With neither bound it is the
// latest page; more then says whether older messages exist. BeforeSeq pages
// backwards (more: older exist), AfterSeq forwards (more: newer exist).
type HistoryQuery struct {
	Limit     int
	BeforeSeq *int64
	AfterSeq  *int64
}

// SessionCursor is the position after which a session list continues.
type SessionCursor struct {
	Activity Time   `json:"a"`
	ID       string `json:"i"`
}
