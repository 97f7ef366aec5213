package stomp

// ConnObserver learns when a user's STOMP connection is established and
// when it ends on this instance (presence tracking). Both calls come from
// connection goroutines, once per connection each, Disconnected after
// Connected; they must return quickly and must not call back into the Hub.
type ConnObserver interface {
	Connected(userID string)
	Disconnected(userID string)
}

type observerBox struct{ o ConnObserver }

// Observe sets the observer of connections established and ended from now
// on; nil removes it. Set it before the Hub serves connections, or the
// observer misses the ones already open.
func (h *Hub) Observe(o ConnObserver) {
	if o == nil {
		h.observer.Store(nil)
		return
	}
	h.observer.Store(&observerBox{o: o})
}

func (h *Hub) observe(userID string, connected bool) {
	b := h.observer.Load()
	if b == nil {
		return
	}
	if connected {
		b.o.Connected(userID)
	} else {
		b.o.Disconnected(userID)
	}
}

// Connected reports whether userID has a STOMP connection open on this instance.
func (h *Hub) Connected(userID string) bool { return len(h.users.get(userID)) > 0 }

// DeliverToUsers sends one JSON event (body, encoded once) to the
// /user/queue/events subscriptions of every connection of users open on
// this instance; users without one are skipped, and users must not repeat.
// Like Deliver it never blocks. It returns how many connections it reached.
func (h *Hub) DeliverToUsers(users []string, body []byte) int {
	var p *payload
	n := 0
	for _, u := range users {
		cs := h.users.get(u)
		if len(cs) == 0 {
			continue
		}
		if p == nil {
			p = &payload{contentType: contentJSON, queue: destEvents}
			p.encode(body)
		}
		for _, c := range cs {
			c.deliverUser(p)
			n++
		}
	}
	return n
}
