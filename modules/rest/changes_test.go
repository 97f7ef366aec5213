package rest_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
	"github.com/chat-service/chat/modules/platform/platformtest"
)

// expect checks a response's status and, for an error, its problem code.
func expect(t *testing.T, what string, res platformtest.Response, status int, code string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("%s: %d %s, want %d %s", what, res.Status, res.Body, status, code)
	}
	if code != "" {
		if got := res.Problem(t); got != code {
			t.Fatalf("%s: code %q, want %q (%s)", what, got, code, res.Body)
		}
	}
}

func memberIDs(s chat.Session) []string {
	ids := make([]string, len(s.Participants))
	for i, p := range s.Participants {
		ids[i] = p.UserID
	}
	slices.Sort(ids)
	return ids
}

func roleOf(s chat.Session, user string) string {
	for _, p := range s.Participants {
		if p.UserID == user {
			return p.Role
		}
	}
	return ""
}

func TestMembership(t *testing.T) {
	backends(t, func(c *config.Config) { c.Limits.MaxParticipants = 4 }, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		dave, erin := platformtest.Token(t, "dave"), platformtest.Token(t, "erin")
		g := createSession(t, a, u.alice, `{"participants":["bob"],"title":"Team"}`)
		if g.Type != chat.TypeGroup || roleOf(g, "alice") != chat.RoleOwner || roleOf(g, "bob") != chat.RoleMember {
			t.Fatalf("roles of a new group: %+v", g.Participants)
		}
		if !strings.Contains(string(a.Do("GET", "/api/chat/sessions/"+g.ID, u.bob, nil).Body), `"role":"owner"`) {
			t.Fatal("role missing from the session JSON")
		}
		send(t, a, u.alice, g.ID, "before carol", "")
		send(t, a, u.bob, g.ID, "also before carol", "")
		path := "/api/chat/sessions/" + g.ID + "/participants"

		// Any participant adds; the added user sees the whole history and
		// starts with nothing unread.
		res := a.Do("POST", path, u.bob, `{"userIds":["carol"]}`)
		expect(t, "bob adds carol", res, http.StatusOK, "")
		var s chat.Session
		res.JSON(t, &s)
		if !slices.Equal(memberIDs(s), []string{"alice", "bob", "carol"}) || roleOf(s, "carol") != chat.RoleMember {
			t.Fatalf("after adding carol: %+v", s.Participants)
		}
		if p := history(t, a, u.carol, g.ID, ""); len(p.Messages) != 2 || p.Messages[0].Content != "before carol" {
			t.Fatalf("carol's history: %+v", p.Messages)
		}
		var cs chat.Session
		a.Do("GET", "/api/chat/sessions/"+g.ID, u.carol, nil).JSON(t, &cs)
		if cs.Unread != 0 || cs.LastSeq != 2 {
			t.Fatalf("carol's view: unread %d lastSeq %d", cs.Unread, cs.LastSeq)
		}

		// Ids already in it are ignored.
		res = a.Do("POST", path, u.alice, `{"userIds":["bob","carol","alice"]}`)
		expect(t, "re-adding members", res, http.StatusOK, "")
		res.JSON(t, &s)
		if len(s.Participants) != 3 {
			t.Fatalf("re-adding changed members: %+v", s.Participants)
		}

		// CanChat refuses one: nothing is added.
		expect(t, "adding mallory", a.Do("POST", path, u.alice, `{"userIds":["dave","mallory"]}`), http.StatusForbidden, "chat_not_allowed")
		a.Do("GET", "/api/chat/sessions/"+g.ID, u.alice, nil).JSON(t, &s)
		if len(s.Participants) != 3 {
			t.Fatalf("a refused addition added someone: %+v", s.Participants)
		}
		expect(t, "dave after the refusal", a.Do("GET", "/api/chat/sessions/"+g.ID, dave, nil), http.StatusNotFound, "session_not_found")

		// limits.max_participants (4) counts the whole session.
		expect(t, "over the limit", a.Do("POST", path, u.alice, `{"userIds":["dave","erin"]}`), http.StatusBadRequest, "invalid_participants")
		expect(t, "up to the limit", a.Do("POST", path, u.alice, `{"userIds":["dave"]}`), http.StatusOK, "")
		expect(t, "erin", a.Do("GET", "/api/chat/sessions/"+g.ID, erin, nil), http.StatusNotFound, "session_not_found")

		// Bad requests.
		for _, tc := range []struct{ name, body, code string }{
			{"no userIds", `{}`, "invalid_user_ids"},
			{"empty userIds", `{"userIds":[]}`, "invalid_user_ids"},
			{"bad user id", `{"userIds":["no spaces"]}`, "invalid_user_ids"},
			{"unknown field", `{"userIds":["x"],"role":"owner"}`, "unknown_field"},
		} {
			expect(t, tc.name, a.Do("POST", path, u.alice, tc.body), http.StatusBadRequest, tc.code)
		}
		expect(t, "non-participant adds", a.Do("POST", path, erin, `{"userIds":["erin"]}`), http.StatusNotFound, "session_not_found")
		expect(t, "bad session id", a.Do("POST", "/api/chat/sessions/nope/participants", u.alice, `{"userIds":["x"]}`), http.StatusBadRequest, "invalid_session_id")

		// Removal: only the owner removes others; anyone leaves.
		expect(t, "bob removes carol", a.Do("DELETE", path+"/carol", u.bob, nil), http.StatusForbidden, "forbidden")
		expect(t, "carol leaves", a.Do("DELETE", path+"/carol", u.carol, nil), http.StatusNoContent, "")
		expect(t, "alice removes dave", a.Do("DELETE", path+"/dave", u.alice, nil), http.StatusNoContent, "")
		expect(t, "removing a non-member", a.Do("DELETE", path+"/dave", u.alice, nil), http.StatusNoContent, "")
		expect(t, "bad user id", a.Do("DELETE", path+"/a%20b", u.alice, nil), http.StatusBadRequest, "invalid_user_id")

		// From then on the session does not exist for them.
		for _, tok := range []string{u.carol, dave} {
			expect(t, "session after removal", a.Do("GET", "/api/chat/sessions/"+g.ID, tok, nil), http.StatusNotFound, "session_not_found")
			expect(t, "history after removal", a.Do("GET", "/api/chat/sessions/"+g.ID+"/messages", tok, nil), http.StatusNotFound, "session_not_found")
			expect(t, "send after removal", a.Do("POST", "/api/chat/sessions/"+g.ID+"/messages", tok, `{"content":"x"}`), http.StatusNotFound, "session_not_found")
			expect(t, "read after removal", a.Do("POST", "/api/chat/sessions/"+g.ID+"/read", tok, `{"seq":1}`), http.StatusNotFound, "session_not_found")
			expect(t, "add after removal", a.Do("POST", path, tok, `{"userIds":["erin"]}`), http.StatusNotFound, "session_not_found")
			var list sessionListBody
			a.Do("GET", "/api/chat/sessions", tok, nil).JSON(t, &list)
			if len(list.Sessions) != 0 {
				t.Fatalf("a removed user still lists the session: %+v", list.Sessions)
			}
		}
		a.Do("GET", "/api/chat/sessions/"+g.ID, u.alice, nil).JSON(t, &s)
		if !slices.Equal(memberIDs(s), []string{"alice", "bob"}) {
			t.Fatalf("after removals: %+v", s.Participants)
		}
		// A send right after the removal reaches the store under the new
		// membership (the cache was forgotten).
		send(t, a, u.bob, g.ID, "after", "")

		// Direct sessions have fixed participants.
		d := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		expect(t, "add to direct", a.Do("POST", "/api/chat/sessions/"+d.ID+"/participants", u.alice, `{"userIds":["carol"]}`), http.StatusBadRequest, "not_a_group")
		expect(t, "leave direct", a.Do("DELETE", "/api/chat/sessions/"+d.ID+"/participants/alice", u.alice, nil), http.StatusBadRequest, "not_a_group")
	})
}

type sessionListBody struct {
	Sessions []chat.Session `json:"sessions"`
}

func TestEditAndDelete(t *testing.T) {
	backends(t, nil, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		g := createSession(t, a, u.alice, `{"participants":["bob"],"title":"Edits"}`)
		m1, _ := send(t, a, u.alice, g.ID, "helo", "c-1")
		send(t, a, u.bob, g.ID, "hi", "")
		msgPath := func(seq string) string { return "/api/chat/sessions/" + g.ID + "/messages/" + seq }

		res := a.Do("PATCH", msgPath("1"), u.alice, `{"content":"hello"}`)
		expect(t, "alice edits", res, http.StatusOK, "")
		var ed chat.Message
		res.JSON(t, &ed)
		if ed.Content != "hello" || ed.EditedAt == nil || ed.Seq != 1 || ed.ID != m1.ID || ed.Deleted || !strings.Contains(string(res.Body), `"editedAt":"`) {
			t.Fatalf("edited message: %s", res.Body)
		}
		if p := history(t, a, u.bob, g.ID, ""); p.Messages[0].Content != "hello" || p.Messages[0].EditedAt == nil || p.Messages[1].EditedAt != nil {
			t.Fatalf("history after the edit: %+v", p.Messages)
		}
		// The idempotent retry of the original send answers its current state.
		if again, status := send(t, a, u.alice, g.ID, "helo", "c-1"); status != http.StatusOK || again.Content != "hello" {
			t.Fatalf("retry after edit: %d %+v", status, again)
		}

		for _, tc := range []struct {
			name, method, path, token, body, code string
			status                                int
		}{
			{"edit by another user", "PATCH", msgPath("1"), u.bob, `{"content":"x"}`, "forbidden", 403},
			{"delete by another user", "DELETE", msgPath("1"), u.bob, "", "forbidden", 403},
			{"edit unknown seq", "PATCH", msgPath("99"), u.alice, `{"content":"x"}`, "message_not_found", 404},
			{"delete unknown seq", "DELETE", msgPath("99"), u.alice, "", "message_not_found", 404},
			{"edit by a non-participant", "PATCH", msgPath("1"), u.carol, `{"content":"x"}`, "session_not_found", 404},
			{"delete by a non-participant", "DELETE", msgPath("1"), u.carol, "", "session_not_found", 404},
			{"empty content", "PATCH", msgPath("1"), u.alice, `{"content":""}`, "invalid_content", 400},
			{"no content", "PATCH", msgPath("1"), u.alice, `{}`, "invalid_content", 400},
			{"content too long", "PATCH", msgPath("1"), u.alice, `{"content":"` + strings.Repeat("x", 4097) + `"}`, "content_too_long", 413},
			{"unknown field", "PATCH", msgPath("1"), u.alice, `{"content":"x","seq":2}`, "unknown_field", 400},
			{"seq not a number", "PATCH", msgPath("one"), u.alice, `{"content":"x"}`, "invalid_seq", 400},
			{"seq zero", "DELETE", msgPath("0"), u.alice, "", "invalid_seq", 400},
			{"bad session id", "DELETE", "/api/chat/sessions/nope/messages/1", u.alice, "", "invalid_session_id", 400},
		} {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			expect(t, tc.name, a.Do(tc.method, tc.path, tc.token, body), tc.status, tc.code)
		}

		expect(t, "alice deletes", a.Do("DELETE", msgPath("1"), u.alice, nil), http.StatusNoContent, "")
		expect(t, "deleting again", a.Do("DELETE", msgPath("1"), u.alice, nil), http.StatusNoContent, "")
		expect(t, "editing a deleted message", a.Do("PATCH", msgPath("1"), u.alice, `{"content":"back"}`), http.StatusConflict, "message_deleted")
		p := history(t, a, u.bob, g.ID, "")
		if len(p.Messages) != 2 || !p.Messages[0].Deleted || p.Messages[0].Content != "" || p.Messages[0].Seq != 1 || p.Messages[1].Content != "hi" {
			t.Fatalf("history after the delete: %+v", p.Messages)
		}
		raw := a.Do("GET", "/api/chat/sessions/"+g.ID+"/messages?afterSeq=0", u.bob, nil).Body
		if !strings.Contains(string(raw), `"content":"","`) || !strings.Contains(string(raw), `"deleted":true`) {
			t.Fatalf("tombstone JSON: %s", raw)
		}
		// The session's lastMessage shows the current state too.
		expect(t, "bob deletes his", a.Do("DELETE", msgPath("2"), u.bob, nil), http.StatusNoContent, "")
		var s chat.Session
		a.Do("GET", "/api/chat/sessions/"+g.ID, u.alice, nil).JSON(t, &s)
		if s.LastMessage == nil || !s.LastMessage.Deleted || s.LastMessage.Content != "" || s.LastSeq != 2 {
			t.Fatalf("lastMessage after delete: %+v", s.LastMessage)
		}
	})
}

func TestEditWindow(t *testing.T) {
	const window = 1500 * time.Millisecond
	backends(t, func(c *config.Config) { c.Limits.EditWindow = window }, func(t *testing.T, a *platformtest.App) {
		u := tokens(t)
		g := createSession(t, a, u.alice, `{"participants":["bob"]}`)
		m, _ := send(t, a, u.alice, g.ID, "quick", "")
		send(t, a, u.alice, g.ID, "second", "")
		path := "/api/chat/sessions/" + g.ID + "/messages/"
		expect(t, "edit within the window", a.Do("PATCH", path+"2", u.alice, `{"content":"fixed"}`), http.StatusOK, "")
		// Waiting is the point here: the window is measured from createdAt.
		time.Sleep(time.Until(m.CreatedAt.Add(window + 100*time.Millisecond)))
		expect(t, "edit past the window", a.Do("PATCH", path+"1", u.alice, `{"content":"late"}`), http.StatusForbidden, "edit_window_passed")
		expect(t, "delete past the window", a.Do("DELETE", path+"1", u.alice, nil), http.StatusForbidden, "edit_window_passed")
		expect(t, "others still get forbidden", a.Do("DELETE", path+"1", u.bob, nil), http.StatusForbidden, "forbidden")
		if p := history(t, a, u.alice, g.ID, ""); p.Messages[0].Content != "quick" || p.Messages[0].Deleted {
			t.Fatalf("a refused change changed the message: %+v", p.Messages[0])
		}
	})
}
