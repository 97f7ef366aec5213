package rest

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/chat"
)

func userID(r *http.Request) string {
	p, _ := auth.FromContext(r.Context()) // the auth middleware guarantees a principal
	return p.UserID
}

func (h *Handlers) createSession(w http.ResponseWriter, r *http.Request) {
	var req chat.CreateSessionRequest
	if !h.decode(w, r, &req) {
		return
	}
	sess, created, err := h.chat.CreateSession(r.Context(), userID(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeCreated(w, created, sess)
}

type sessionList struct {
	Sessions   []chat.Session `json:"sessions"`
	NextCursor *string        `json:"nextCursor"`
}

func (h *Handlers) listSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := parseLimit(w, q.Get("limit"), q.Has("limit"))
	if !ok {
		return
	}
	list, next, err := h.chat.Sessions(r.Context(), userID(r), limit, q.Get("cursor"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := sessionList{Sessions: list}
	if out.Sessions == nil {
		out.Sessions = []chat.Session{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handlers) getSession(w http.ResponseWriter, r *http.Request) {
	sess, err := h.chat.Session(r.Context(), userID(r), mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

type messagePage struct {
	Messages []chat.Message `json:"messages"`
	HasMore  bool           `json:"hasMore"`
}

func (h *Handlers) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := parseLimit(w, q.Get("limit"), q.Has("limit"))
	if !ok {
		return
	}
	hq := chat.HistoryQuery{Limit: limit}
	if q.Has("beforeSeq") && q.Has("afterSeq") {
		badParam(w, "invalid_after_seq", "give beforeSeq or afterSeq, not both")
		return
	}
	if q.Has("beforeSeq") {
		n, ok := parseSeq(w, q.Get("beforeSeq"), "invalid_before_seq", "beforeSeq")
		if !ok {
			return
		}
		hq.BeforeSeq = &n
	}
	if q.Has("afterSeq") {
		n, ok := parseSeq(w, q.Get("afterSeq"), "invalid_after_seq", "afterSeq")
		if !ok {
			return
		}
		hq.AfterSeq = &n
	}
	list, more, err := h.chat.History(r.Context(), userID(r), mux.Vars(r)["id"], hq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []chat.Message{}
	}
	writeJSON(w, http.StatusOK, messagePage{Messages: list, HasMore: more})
}

type sendBody struct {
	Content         *string `json:"content"`
	ClientMessageID *string `json:"clientMessageId"`
}

func (h *Handlers) send(w http.ResponseWriter, r *http.Request) {
	var body sendBody
	if !h.decode(w, r, &body) {
		return
	}
	req := chat.SendRequest{SessionID: mux.Vars(r)["id"]}
	if body.Content != nil {
		req.Content = *body.Content
	}
	if body.ClientMessageID != nil {
		if *body.ClientMessageID == "" {
			badParam(w, "invalid_client_message_id", "clientMessageId must be 1 to 64 of [A-Za-z0-9._:-]")
			return
		}
		req.ClientMessageID = *body.ClientMessageID
	}
	msg, created, err := h.chat.Send(r.Context(), userID(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeCreated(w, created, msg)
}

type readBody struct {
	Seq *int64 `json:"seq"`
}

func (h *Handlers) markRead(w http.ResponseWriter, r *http.Request) {
	var body readBody
	if !h.decode(w, r, &body) {
		return
	}
	if body.Seq == nil {
		badParam(w, "invalid_seq", "seq is required: an integer >= 0")
		return
	}
	if err := h.chat.MarkRead(r.Context(), userID(r), mux.Vars(r)["id"], *body.Seq); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type unreadTotals struct {
	Total    int64              `json:"total"`
	Sessions []chat.UnreadCount `json:"sessions"`
}

func (h *Handlers) unread(w http.ResponseWriter, r *http.Request) {
	list, total, err := h.chat.Unread(r.Context(), userID(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, unreadTotals{Total: total, Sessions: list})
}
