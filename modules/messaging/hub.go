// Package messaging moves events: the transactional outbox, the forwarder
// that publishes outbox rows to the relay, the relay subscriber that hands
// every event to the local Hub, and the durable chat.send command queue.
package messaging

import "github.com/chat-service/chat/modules/chat"

// Hub receives every relay event that reaches this instance. The STOMP
// gateway implements it; Deliver must not block (it enqueues and returns).
// Events keep their routing fields (Participants, Except, Problem).
type Hub interface {
	Deliver(ev chat.Event)
}
