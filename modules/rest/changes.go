package rest

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/chat-service/chat/modules/chat"
)

// Membership of group sessions and edits of messages (API.md, "Additions").

// registerChanges mounts the membership and edit routes.
func (h *Handlers) registerChanges(route func(method, path string, fn http.HandlerFunc)) {
	route(http.MethodPost, "/sessions/{id}/participants", h.addParticipants)
	route(http.MethodDelete, "/sessions/{id}/participants/{userId}", h.removeParticipant)
	route(http.MethodPatch, "/sessions/{id}/messages/{seq}", h.editMessage)
	route(http.MethodDelete, "/sessions/{id}/messages/{seq}", h.deleteMessage)
}

type addParticipantsBody struct {
	UserIDs *[]string `json:"userIds"`
}

func (h *Handlers) addParticipants(w http.ResponseWriter, r *http.Request) {
	var body addParticipantsBody
	if !h.decode(w, r, &body) {
		return
	}
	if body.UserIDs == nil {
		badParam(w, "invalid_user_ids", "userIds is required: a list of user ids")
		return
	}
	sess, err := h.chat.AddParticipants(r.Context(), userID(r), mux.Vars(r)["id"], chat.AddParticipantsRequest{UserIDs: *body.UserIDs})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

func (h *Handlers) removeParticipant(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	if err := h.chat.RemoveParticipant(r.Context(), userID(r), v["id"], v["userId"]); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type editBody struct {
	Content *string `json:"content"`
}

func (h *Handlers) editMessage(w http.ResponseWriter, r *http.Request) {
	seq, ok := pathSeq(w, r)
	if !ok {
		return
	}
	var body editBody
	if !h.decode(w, r, &body) {
		return
	}
	req := chat.EditRequest{SessionID: mux.Vars(r)["id"], Seq: seq}
	if body.Content != nil {
		req.Content = *body.Content
	}
	msg, err := h.chat.EditMessage(r.Context(), userID(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, msg)
}

func (h *Handlers) deleteMessage(w http.ResponseWriter, r *http.Request) {
	seq, ok := pathSeq(w, r)
	if !ok {
		return
	}
	if err := h.chat.DeleteMessage(r.Context(), userID(r), mux.Vars(r)["id"], seq); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pathSeq parses the {seq} of a message path: an integer >= 1.
func pathSeq(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, err := strconv.ParseInt(mux.Vars(r)["seq"], 10, 64)
	if err != nil || n < 1 {
		badParam(w, "invalid_seq", "seq must be an integer >= 1")
		return 0, false
	}
	return n, true
}
