package chat

import (
	"context"
	"database/sql"
)

// ChangeStore is the part of Store for changes after the fact: membership of
// group sessions, and edits and deletes of messages. Each runs in one write
// transaction under the session's lock (the lock sends take), so that a
// send, an edit and a membership change of one session never interleave.
type ChangeStore interface {
	// ParticipantsTx returns a session's participants inside a hook's
	// transaction (the outbox seam), for routing the hook's events.
	ParticipantsTx(ctx context.Context, tx *sql.Tx, sessionID string) ([]string, error)
	// ChangeMembers locks the session, reads its membership and asks
	// decide what to do. decide's error rolls back and is returned as is.
	// Ids of Add already in the session and of Remove not in it are
	// ignored; added users start with lastReadSeq = the session's lastSeq.
	// When something changed, the membership version is bumped and inTx
	// runs in the same transaction. ErrNotFound: no such session.
	ChangeMembers(ctx context.Context, sessionID string, decide func(MembersState) (MembersPlan, error), inTx TxHook[MembersChanged]) (MembersChanged, error)
	// ChangeMessage locks the session, checks that userID is a participant
	// (else ErrNotFound, session_not_found), reads the message with seq
	// (else message_not_found) and asks decide what to do. With apply it
	// stores the change and runs inTx with the message as it now is and
	// the session's participants; changed reports whether it did.
	ChangeMessage(ctx context.Context, sessionID, userID string, seq int64, decide func(Message) (MessageChange, bool, error), inTx ChangeHook) (msg Message, changed bool, err error)
}

// MembersState is a session's membership, read under its lock.
type MembersState struct {
	Type      string
	CreatorID string // "" for sessions created before creators were kept
	Members   []string
}

// MembersPlan is what a membership change does.
type MembersPlan struct {
	Add    []string
	Remove []string
}

// MembersChanged is a stored membership change.
type MembersChanged struct {
	SessionID string
	Before    []string // members before the change
	After     []string // and after it
	Added     []string
	Removed   []string
	// Session is the session as an added user sees it (nil if none was added).
	Session *Session
}

// Changed reports whether anything was added or removed.
func (c MembersChanged) Changed() bool { return len(c.Added)+len(c.Removed) > 0 }

// MessageChange is an edit (Content) or a delete of a message.
type MessageChange struct {
	Content string
	Delete  bool
	At      Time
}

// ChangeHook runs inside the transaction that changed a message.
type ChangeHook func(ctx context.Context, tx *sql.Tx, m Message, participants []string) error
