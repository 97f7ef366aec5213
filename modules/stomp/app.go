package stomp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-stomp/stomp/v3/frame"
	"golang.org/x/time/rate"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/edge"
	"github.com/chat-service/chat/modules/jsonx"
	"github.com/chat-service/chat/modules/problem"
)

// Destinations a client may SEND to.
const (
	AppSend   = "/app/chat.send"
	AppRead   = "/app/chat.read"
	AppTyping = "/app/chat.typing"
)

// onSend handles SEND. handled means it answered the frame itself (RECEIPT
// or a problem on /user/queue/errors); err is a protocol error.
func (c *conn) onSend(f *frame.Frame, receipt string) (handled bool, err error) {
	dest := f.Header.Get(frame.Destination)
	if dest == AppRefresh {
		return c.onRefresh(f, receipt) // refresh.go
	}
	switch dest {
	case AppSend, AppRead, AppTyping, AppEdit, AppDelete:
	default:
		if strings.HasPrefix(dest, "/app/") {
			return false, ReasonUnknownDest.With("no handler for " + truncate(dest, 200))
		}
		return false, ReasonForbiddenDest.With("SEND is accepted on /app/chat.send, /app/chat.read, /app/chat.typing, /app/chat.edit and /app/chat.delete only")
	}
	if _, ok := f.Header.Contains("transaction"); ok {
		return false, ReasonNoTransactions.With("SEND with a transaction header")
	}
	var prob *problem.Problem
	switch dest {
	case AppSend:
		prob = c.appSend(f)
	case AppRead:
		prob = c.appRead(f)
	case AppTyping:
		prob = c.appTyping(f)
	case AppEdit, AppDelete:
		prob = c.appChange(f, dest) // app_change.go
	}
	if prob != nil {
		c.sendProblem(*prob, receipt)
	} else if receipt != "" {
		c.receipt(receipt)
	}
	return true, nil
}

func (c *conn) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.h.o.CallTimeout)
}

func (c *conn) appSend(f *frame.Frame) *problem.Problem {
	var req chat.SendRequest
	if p := decodeJSON(f, &req); p != nil {
		p.ClientMessageID = clientMessageID(f.Body)
		return p
	}
	ctx, cancel := c.call()
	defer cancel()
	if err := c.h.o.Chat.CheckSend(ctx, c.user, req); err != nil {
		p := problemFor(err)
		p.ClientMessageID = req.ClientMessageID
		return &p
	}
	if err := c.h.o.Commands.Submit(ctx, c.user, req); err != nil {
		c.lg().Warn("submit send command failed", "session_id", req.SessionID, "error", err)
		p := problemFor(err)
		p.ClientMessageID = req.ClientMessageID
		return &p
	}
	return nil
}

func (c *conn) appRead(f *frame.Frame) *problem.Problem {
	var req struct {
		SessionID string          `json:"sessionId"`
		Seq       json.RawMessage `json:"seq"`
	}
	if p := decodeJSON(f, &req); p != nil {
		return p
	}
	seq, p := parseSeq(req.Seq, 0)
	if p != nil {
		return p
	}
	ctx, cancel := c.call()
	defer cancel()
	if err := c.h.o.Chat.MarkRead(ctx, c.user, req.SessionID, seq); err != nil {
		p := problemFor(err)
		return &p
	}
	return nil
}

func (c *conn) appTyping(f *frame.Frame) *problem.Problem {
	var req struct {
		SessionID string `json:"sessionId"`
	}
	if p := decodeJSON(f, &req); p != nil {
		return p
	}
	if !c.h.o.Features.Typing {
		return nil // typing is transient: off, it is dropped quietly
	}
	if c.typing == nil { // most connections never type: no limiter until one does
		c.typing = rate.NewLimiter(rate.Every(c.h.o.TypingEvery), 3)
	}
	if !c.typing.Allow() {
		return nil // over this connection's rate, it is dropped quietly too
	}
	ctx, cancel := c.call()
	defer cancel()
	if err := c.h.o.Chat.Typing(ctx, c.user, req.SessionID); err != nil {
		p := problemFor(err)
		return &p
	}
	return nil
}

// sendProblem delivers a problem document to this connection's
// /user/queue/errors subscriptions, with the SEND's receipt as receipt-id.
func (c *conn) sendProblem(p problem.Problem, receipt string) {
	body, err := json.Marshal(p)
	if err != nil {
		c.lg().Error("encode problem", "error", err)
		return
	}
	pl := &payload{contentType: contentProblem, queue: destErrors, isError: true}
	pl.encode(body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queues[queueIndex(destErrors)]) == 0 {
		c.debug("problem not delivered: no /user/queue/errors subscription", "code", p.Code)
	}
	for _, s := range c.queues[queueIndex(destErrors)] {
		c.push(outItem{kind: kindMessage, sub: s, p: pl, receipt: receipt}, 0)
	}
}

// decodeJSON strictly decodes a SEND body by the rules of a REST body
// (jsonx): application/json or no content-type, valid UTF-8, one JSON
// object, no unknown fields.
func decodeJSON(f *frame.Frame, v any) *problem.Problem {
	if ct := f.Header.Get(frame.ContentType); ct != "" && !jsonx.Accepts(ct) {
		return jsonx.Unsupported()
	}
	return jsonx.Decode(f.Body, v)
}

// clientMessageID digs the clientMessageId out of a body that failed to
// decode, so that the problem can still name the message.
func clientMessageID(body []byte) string {
	var v struct {
		ClientMessageID string `json:"clientMessageId"`
	}
	_ = json.Unmarshal(body, &v) // best effort: a body that does not parse simply has none
	if len(v.ClientMessageID) > 64 {
		return ""
	}
	return v.ClientMessageID
}

// problemFor maps an error of a Chat or Commands call to the problem the
// REST edge would answer; a call that ran out of time is "unavailable".
func problemFor(err error) problem.Problem {
	if errors.Is(err, context.DeadlineExceeded) {
		return problem.New(http.StatusServiceUnavailable, "unavailable", "the service cannot take the request now; retry later")
	}
	p, _ := edge.Problem(err) // an unexpected error becomes a 500 "internal" without its text
	return p
}

// parseSeq reads a body's seq: a JSON integer of at least min, else the
// invalid_seq problem REST answers too.
func parseSeq(raw json.RawMessage, min int64) (int64, *problem.Problem) {
	seq, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || seq < min {
		p := problem.New(http.StatusBadRequest, "invalid_seq", "seq must be an integer >= "+strconv.FormatInt(min, 10))
		return 0, &p
	}
	return seq, nil
}
