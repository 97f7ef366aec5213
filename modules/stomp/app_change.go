package stomp

import (
	"encoding/json"
	"net/http"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/problem"
)

// Destinations that change a stored message (the REST PATCH and DELETE of
// /api/chat/sessions/{id}/messages/{seq}, with the same rules and codes).
const (
	AppEdit   = "/app/chat.edit"
	AppDelete = "/app/chat.delete"
)

// appChange handles /app/chat.edit {"sessionId","seq","content"} and
// /app/chat.delete {"sessionId","seq"}; a refusal is the problem the REST
// edge would answer.
func (c *conn) appChange(f *frame.Frame, dest string) *problem.Problem {
	var req struct {
		SessionID string          `json:"sessionId"`
		Seq       json.RawMessage `json:"seq"`
		Content   *string         `json:"content"`
	}
	if p := decodeJSON(f, &req); p != nil {
		return p
	}
	seq, p := parseSeq(req.Seq, 1)
	if p != nil {
		return p
	}
	var err error
	ctx, cancel := c.call()
	defer cancel()
	if dest == AppDelete {
		if req.Content != nil {
			p := problem.New(http.StatusBadRequest, "unknown_field", "chat.delete takes sessionId and seq only")
			return &p
		}
		err = c.h.o.Chat.DeleteMessage(ctx, c.user, req.SessionID, seq)
	} else {
		content := ""
		if req.Content != nil {
			content = *req.Content
		}
		_, err = c.h.o.Chat.EditMessage(ctx, c.user, chat.EditRequest{SessionID: req.SessionID, Seq: seq, Content: content})
	}
	if err != nil {
		p := problemFor(err)
		return &p
	}
	return nil
}
