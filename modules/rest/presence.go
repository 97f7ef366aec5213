package rest

import (
	"context"
	"net/http"
	"strings"

	"github.com/chat-service/chat/modules/auth"
	"github.com/chat-service/chat/modules/presence"
)

// Presence answers GET /api/chat/presence (modules/presence's Tracker).
type Presence interface {
	Status(ctx context.Context, caller string, users []string) ([]presence.Status, error)
}

// maxPresenceIDs bounds the userIds of one presence request.
const maxPresenceIDs = 100

type presenceList struct {
	Users []presence.Status `json:"users"`
}

// presenceOf serves GET /api/chat/presence?userIds=a,b: at most 100
// well-formed, distinct ids (a repeated id is answered once).
func (h *Handlers) presenceOf(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	raw := q.Get("userIds")
	if len(q["userIds"]) > 1 || strings.TrimSpace(raw) == "" {
		badParam(w, "invalid_user_ids", "userIds must be one comma-separated list of 1 to 100 user ids")
		return
	}
	parts := strings.Split(raw, ",")
	if len(parts) > maxPresenceIDs {
		badParam(w, "invalid_user_ids", "at most 100 user ids per request")
		return
	}
	ids := make([]string, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if !auth.ValidUserID(p) {
			badParam(w, "invalid_user_ids", "each user id must match ^[A-Za-z0-9._@:-]{1,128}$")
			return
		}
		if !seen[p] {
			seen[p] = true
			ids = append(ids, p)
		}
	}
	caller := userID(r)
	if err := h.chat.AllowRead(caller); err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := h.presence.Status(r.Context(), caller, ids)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, presenceList{Users: list})
}
