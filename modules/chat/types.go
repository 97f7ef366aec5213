package chat

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/chat-service/chat/modules/problem"
)

// Session types.
const (
	TypeDirect = "direct"
	TypeGroup  = "group"
)

// Time is a timestamp that encodes as RFC 3339 with milliseconds in UTC,
// the format docs/api.md promises ("Conventions"). Stores keep millisecond precision.
type Time struct{ time.Time }

// TimeLayout is the wire format of every timestamp.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// NewTime truncates t to milliseconds in UTC.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// Now is the current time as stored.
func Now() Time { return NewTime(time.Now()) }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	*t = NewTime(p)
	return nil
}

// Session is a conversation as one participant (the caller) sees it.
type Session struct {
	ID           string        `json:"id"`
	Type         string        `json:"type"`
	Title        *string       `json:"title"`
	CreatedAt    Time          `json:"createdAt"`
	LastSeq      int64         `json:"lastSeq"`
	Unread       int64         `json:"unread"`
	LastMessage  *Message      `json:"lastMessage"`
	Participants []Participant `json:"participants"`
	// LastActivity orders session lists: the last message's time, else CreatedAt.
	LastActivity Time `json:"-"`
}

// Participant is a member of a session, enriched with its profile.
type Participant struct {
	UserID      string `json:"userId"`
	DisplayName string `json:"displayName,omitempty"`
	AvatarURL   string `json:"avatarUrl,omitempty"`
	LastReadSeq int64  `json:"lastReadSeq"`
	// Role is RoleOwner for the session's creator, else RoleMember.
	Role string `json:"role"`
}

// Participant roles.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Message is one stored chat message.
type Message struct {
	ID              string `json:"id"`
	SessionID       string `json:"sessionId"`
	Seq             int64  `json:"seq"`
	SenderID        string `json:"senderId"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
	Content         string `json:"content"`
	CreatedAt       Time   `json:"createdAt"`
	// EditedAt is when the content was last edited; absent if never.
	EditedAt *Time `json:"editedAt,omitempty"`
	// Deleted marks a tombstone: the message was deleted, its content is "".
	Deleted bool    `json:"deleted,omitempty"`
	Sender  *Sender `json:"sender,omitempty"`

	// MembersVersion is the session's membership version when the message
	// was stored (under the session's lock): the service routes the event
	// with its cached participants only when their version is this one.
	MembersVersion int64 `json:"-"`
}

// Sender is the profile snapshot of a message's author; nil when the
// profile provider is unavailable and nothing is cached.
type Sender struct {
	UserID      string `json:"userId"`
	DisplayName string `json:"displayName,omitempty"`
	AvatarURL   string `json:"avatarUrl,omitempty"`
}

// UnreadCount is one session's unread messages for a user.
type UnreadCount struct {
	SessionID string `json:"sessionId"`
	Unread    int64  `json:"unread"`
}

// Event types, the `type` field of every event body.
const (
	EventMessage = "message"
	EventRead    = "read"
	EventTyping  = "typing"
	EventSession = "session"
	EventResync  = "resync"
	EventError   = "error"
	EventMembers = "members" // participants added or removed
	EventRemoved = "removed" // to a removed user's topic subscriptions, then silence
	EventEdit    = "edit"
	EventDelete  = "delete"
)

// Event is what the relay carries to every instance. Its JSON is the body
// clients receive; the routing fields are carried beside it by messaging.
type Event struct {
	Type      string   `json:"type"`
	SessionID string   `json:"sessionId,omitempty"`
	Message   *Message `json:"message,omitempty"`
	Session   *Session `json:"session,omitempty"`
	UserID    string   `json:"userId,omitempty"`
	Seq       int64    `json:"seq,omitempty"`
	FromSeq   *int64   `json:"fromSeq,omitempty"`
	// Added, Removed and By describe a members event; both lists are
	// present (possibly empty) in one, absent from other events.
	Added   []string `json:"added,omitzero"`
	Removed []string `json:"removed,omitzero"`
	By      string   `json:"by,omitempty"`

	// Participants are the users whose /user/queue/* receive the event.
	Participants []string `json:"-"`
	// Except is a user that must not receive the event (the typist).
	Except string `json:"-"`
	// Problem is the body of an error event (type "error"), which goes to
	// Participants[0]'s /user/queue/errors only.
	Problem *problem.Problem `json:"-"`
}
