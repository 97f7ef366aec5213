package messaging

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

// envelope is an event as the outbox and the relay carry it: the client body
// plus the routing fields chat.Event keeps out of its JSON.
type envelope struct {
	Event        chat.Event       `json:"event"`
	Participants []string         `json:"participants,omitempty"`
	Except       string           `json:"except,omitempty"`
	Problem      *problem.Problem `json:"problem,omitempty"`
}

// newEventMessage wraps ev in a watermill message.
func newEventMessage(ev chat.Event) (*message.Message, error) {
	payload, err := json.Marshal(envelope{Event: ev, Participants: ev.Participants, Except: ev.Except, Problem: ev.Problem})
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(metaEventType, ev.Type)
	msg.Metadata.Set(metaStoredAt, strconv.FormatInt(time.Now().UnixNano(), 10))
	return msg, nil
}

// decodeEvent reads an event written by newEventMessage.
func decodeEvent(payload []byte) (chat.Event, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return chat.Event{}, fmt.Errorf("decode event: %w", err)
	}
	ev := env.Event
	ev.Participants, ev.Except, ev.Problem = env.Participants, env.Except, env.Problem
	return ev, nil
}

// routes decides where an event goes on the relay. Session events go once
// to session.{id}, carrying the participants so that every instance can also
// serve its local users' /user/queue/*. Events for single users (errors, a
// created session, which no instance can know by its new id yet) go to
// user.{id}, one publication per user, each naming only that user.
func routes(ev chat.Event) []route {
	switch {
	case ev.Type == chat.EventError:
		if len(ev.Participants) == 0 {
			return nil
		}
		return []route{{key: UserKey(ev.Participants[0]), ev: ev}}
	case ev.Type == chat.EventSession || ev.SessionID == "":
		out := make([]route, 0, len(ev.Participants))
		for _, p := range ev.Participants {
			one := ev
			one.Participants = []string{p}
			out = append(out, route{key: UserKey(p), ev: one, narrowed: len(ev.Participants) > 1})
		}
		return out
	default:
		return []route{{key: SessionKey(ev.SessionID), ev: ev}}
	}
}

// storedAt is when msg's event entered the outbox, or the zero time.
func storedAt(msg *message.Message) time.Time {
	n, err := strconv.ParseInt(msg.Metadata.Get(metaStoredAt), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n)
}
