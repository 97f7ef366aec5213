package stomp

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
)

// AppRefresh is the SEND destination that replaces a live connection's
// token: header Authorization: Bearer <jwt>, no body.
const AppRefresh = "/app/auth.refresh"

// TokenWarning is how long before a connection's token expires the
// connection gets a token_expiring event on /user/queue/events.
const TokenWarning = 60 * time.Second

// EventTokenExpiring is the type of the event sent TokenWarning before expiry.
const EventTokenExpiring = "token_expiring"

// tokenState is a connection's token expiry. The writer enforces it (it
// reads expiry on every pass over its timers); a refresh moves it and
// wakes the writer. The warning is a timer of its own, so that the writer
// loop, the hot path, knows nothing of it.
type tokenState struct {
	exp atomic.Int64 // unix nanoseconds; 0: never expires

	mu      sync.Mutex  // guards timer
	timer   *time.Timer // fires warn at expiry - TokenWarning; nil none
	stopped bool        // the connection ended: arm no more timers

	// pending: the warning came due before any /user/queue/events
	// subscription; it is sent right after the first one. Guarded by conn.mu.
	pending *payload
}

// expiry is the connection's current token expiry; zero: never.
func (ts *tokenState) expiry() time.Time {
	if n := ts.exp.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// setExpiry records the expiry of the connection's (new) token and arms
// the token_expiring warning for it. Called at CONNECT and on a refresh.
func (c *conn) setExpiry(exp time.Time) {
	ts := &c.tok
	if exp.IsZero() {
		ts.exp.Store(0)
	} else {
		ts.exp.Store(exp.UnixNano())
	}
	c.mu.Lock()
	ts.pending = nil // a warning not sent yet was about the old token
	c.mu.Unlock()
	ts.mu.Lock()
	if ts.timer != nil {
		ts.timer.Stop()
		ts.timer = nil
	}
	due := time.Until(exp.Add(-TokenWarning))
	if exp.IsZero() || ts.stopped {
		ts.mu.Unlock()
		return
	}
	if due > 0 {
		ts.timer = time.AfterFunc(due, func() { c.warnExpiring(exp) })
		ts.mu.Unlock()
		return
	}
	ts.mu.Unlock()
	// Due already: now, so that it precedes the RECEIPT of this frame, or
	// waits for the first /user/queue/events subscription.
	c.warnExpiring(exp)
}

// stop stops the warning timer for good, when the connection ends, so that
// a closed connection is not kept until its token's expiry.
func (ts *tokenState) stop() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.stopped = true
	if ts.timer != nil {
		ts.timer.Stop()
		ts.timer = nil
	}
}

// warnExpiring sends token_expiring to the connection's /user/queue/events
// subscriptions, or keeps it for the first one.
func (c *conn) warnExpiring(exp time.Time) {
	if c.tok.exp.Load() != exp.UnixNano() {
		return // refreshed meanwhile
	}
	body, err := json.Marshal(struct {
		Type      string    `json:"type"`
		ExpiresAt chat.Time `json:"expiresAt"`
	}{EventTokenExpiring, chat.Time{Time: exp}})
	if err != nil {
		c.lg().Error("encode token_expiring", "error", err)
		return
	}
	p := &payload{contentType: contentJSON, queue: destEvents}
	p.encode(body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return
	}
	subs := c.queues[queueIndex(destEvents)]
	if len(subs) == 0 {
		c.tok.pending = p
		return
	}
	for _, s := range subs {
		c.deliverSubLocked(s, p, 0)
	}
}

// flushTokenWarning runs after each SUBSCRIBE (before its RECEIPT): a
// warning that came due while the connection had no /user/queue/events
// subscription goes to the one a successful SUBSCRIBE just made.
func (c *conn) flushTokenWarning(err *error) {
	if *err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.tok.pending
	subs := c.queues[queueIndex(destEvents)]
	if p == nil || c.gone || len(subs) == 0 {
		return
	}
	c.tok.pending = nil
	for _, s := range subs {
		c.deliverSubLocked(s, p, 0)
	}
}

// errRefreshUnauthorized ends a connection whose refresh token is
// missing, invalid or for another user.
func errRefreshUnauthorized(detail string) *ProtocolError {
	return ReasonUnauthorized.With(detail)
}

// onRefresh handles SEND /app/auth.refresh: a valid token for the
// connection's user moves its expiry; anything else ends the connection.
func (c *conn) onRefresh(f *frame.Frame, receipt string) (handled bool, err error) {
	token := bearer(f.Header)
	if token == "" {
		return false, errRefreshUnauthorized("no token: send Authorization: Bearer <jwt> with " + AppRefresh)
	}
	p, err := c.h.o.Auth.Authenticate(token)
	if err != nil {
		return false, errRefreshUnauthorized("the new token is invalid or expired")
	}
	if p.UserID != c.user {
		return false, errRefreshUnauthorized("the new token is for another user")
	}
	if !p.ExpiresAt.IsZero() && !time.Now().Before(p.ExpiresAt) {
		return false, ReasonTokenExpired.With("the new token has expired")
	}
	c.setExpiry(p.ExpiresAt)
	c.q.wake() // the writer re-reads the expiry (it may have moved earlier)
	c.debug("stomp token refreshed")
	if receipt != "" {
		c.receipt(receipt)
	}
	return true, nil
}
