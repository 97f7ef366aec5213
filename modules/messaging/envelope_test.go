package messaging

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

func TestRoutes(t *testing.T) {
	p := problem.New(400, "invalid_content", "empty")
	cases := []struct {
		name string
		ev   chat.Event
		want []route
	}{
		{
			name: "message goes once to its session, with every participant",
			ev:   chat.Event{Type: chat.EventMessage, SessionID: "s1", Participants: []string{"a", "b"}},
			want: []route{{key: "session.s1", ev: chat.Event{Type: chat.EventMessage, SessionID: "s1", Participants: []string{"a", "b"}}}},
		},
		{
			name: "typing goes to its session and keeps the typist out",
			ev:   chat.Event{Type: chat.EventTyping, SessionID: "s1", UserID: "a", Participants: []string{"a", "b"}, Except: "a"},
			want: []route{{key: "session.s1", ev: chat.Event{Type: chat.EventTyping, SessionID: "s1", UserID: "a", Participants: []string{"a", "b"}, Except: "a"}}},
		},
		{
			name: "a created session goes to each participant alone",
			ev:   chat.Event{Type: chat.EventSession, Participants: []string{"a", "b"}},
			want: []route{
				{key: "user.a", ev: chat.Event{Type: chat.EventSession, Participants: []string{"a"}}, narrowed: true},
				{key: "user.b", ev: chat.Event{Type: chat.EventSession, Participants: []string{"b"}}, narrowed: true},
			},
		},
		{
			name: "an error goes to its user",
			ev:   chat.Event{Type: chat.EventError, SessionID: "s1", Participants: []string{"a"}, Problem: &p},
			want: []route{{key: "user.a", ev: chat.Event{Type: chat.EventError, SessionID: "s1", Participants: []string{"a"}, Problem: &p}}},
		},
		{
			name: "an error for nobody goes nowhere",
			ev:   chat.Event{Type: chat.EventError, Problem: &p},
			want: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := routes(tc.ev); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("routes = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestEnvelopeRoundTrip: the routing fields chat.Event keeps out of its JSON
// survive the outbox and the relay, and the client body is unchanged.
func TestEnvelopeRoundTrip(t *testing.T) {
	p := problem.New(413, "content_too_long", "too long")
	p.ClientMessageID = "c-1"
	seq := int64(4)
	in := chat.Event{
		Type: chat.EventMessage, SessionID: "s1", UserID: "u", Seq: 3, FromSeq: &seq,
		Message:      &chat.Message{ID: "m1", SessionID: "s1", Seq: 3, SenderID: "a", Content: "hi", CreatedAt: chat.Now()},
		Participants: []string{"a", "b"}, Except: "a", Problem: &p,
	}
	msg, err := newEventMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Metadata.Get(metaEventType) != chat.EventMessage || storedAt(msg).IsZero() {
		t.Errorf("metadata %v", msg.Metadata)
	}
	out, err := decodeEvent(msg.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	body, _ := json.Marshal(out)
	want, _ := json.Marshal(in)
	if string(body) != string(want) {
		t.Errorf("client body changed: %s vs %s", body, want)
	}
}
