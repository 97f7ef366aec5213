package chat

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// Membership of group sessions: any participant adds users; a user leaves,
// or the session's creator (its owner) removes anyone. Every change
// publishes one members event, through the outbox, to the session topic and
// to everyone in the session before or after it, and a session event to
// each added user. The rules are checked under the session's lock
// (Store.ChangeMembers), so concurrent changes cannot exceed the limit.

// AddParticipantsRequest is the body of POST /api/chat/sessions/{id}/participants.
type AddParticipantsRequest struct {
	UserIDs []string `json:"userIds"`
}

// AddParticipants adds users to a group session and returns it as the
// caller sees it. Ids already in it are ignored.
func (s *Service) AddParticipants(ctx context.Context, userID, sessionID string, req AddParticipantsRequest) (Session, error) {
	if !ValidSessionID(sessionID) {
		return Session{}, invalid("invalid_session_id", "session id must be a UUID")
	}
	if len(req.UserIDs) == 0 {
		return Session{}, invalid("invalid_user_ids", "userIds must name at least one user")
	}
	if len(req.UserIDs) > s.limits.MaxParticipants {
		return Session{}, invalid("invalid_participants", "at most %d participants, the caller included", s.limits.MaxParticipants)
	}
	var ids []string
	for _, u := range req.UserIDs {
		if !ValidUserID(u) {
			return Session{}, invalid("invalid_user_ids", "user id %q is not a valid user id", truncate(u, 140))
		}
		if !slices.Contains(ids, u) {
			ids = append(ids, u)
		}
	}
	// Membership changes spend the per-user write budget, like sends.
	if err := s.limiter.Allow(userID); err != nil {
		return Session{}, err
	}
	// The session must be the caller's (404 otherwise) and a group before
	// the profile provider is asked anything. The store checks again under
	// the session's lock.
	cur, err := s.store.Session(ctx, sessionID, userID)
	if err != nil {
		return Session{}, s.mapNotFound(fmt.Errorf("add participants to session %s: %w", sessionID, err))
	}
	if cur.Type != TypeGroup {
		return Session{}, notAGroup()
	}
	var asked []string // the ids not in the session: only these are added
	for _, u := range ids {
		if !slices.ContainsFunc(cur.Participants, func(p Participant) bool { return p.UserID == u }) {
			asked = append(asked, u)
		}
	}
	for _, u := range asked {
		if !s.dir.CanChat(ctx, userID, u) {
			return Session{}, &Error{Kind: ErrForbidden, Code: "chat_not_allowed", Detail: "the profile provider does not allow adding " + truncate(u, 140)}
		}
	}
	err = s.changeMembers(ctx, userID, sessionID, func(st MembersState) (MembersPlan, error) {
		if err := st.check(userID); err != nil {
			return MembersPlan{}, err
		}
		n := len(st.Members)
		for _, u := range asked {
			if !slices.Contains(st.Members, u) {
				n++
			}
		}
		if n > s.limits.MaxParticipants {
			return MembersPlan{}, invalid("invalid_participants", "at most %d participants, the caller included", s.limits.MaxParticipants)
		}
		return MembersPlan{Add: asked}, nil
	})
	if err != nil {
		return Session{}, err
	}
	return s.Session(ctx, userID, sessionID)
}

// RemoveParticipant removes target from a group session: the caller
// leaving (target is the caller), or the session's owner removing anyone.
// Removing someone who is not in the session changes nothing.
func (s *Service) RemoveParticipant(ctx context.Context, userID, sessionID, target string) error {
	if !ValidSessionID(sessionID) {
		return invalid("invalid_session_id", "session id must be a UUID")
	}
	if !ValidUserID(target) {
		return invalid("invalid_user_id", "user id must match ^[A-Za-z0-9._@:-]{1,128}$")
	}
	if err := s.limiter.Allow(userID); err != nil {
		return err
	}
	return s.changeMembers(ctx, userID, sessionID, func(st MembersState) (MembersPlan, error) {
		if err := st.check(userID); err != nil {
			return MembersPlan{}, err
		}
		if target != userID && st.CreatorID != userID {
			return MembersPlan{}, &Error{Kind: ErrForbidden, Code: "forbidden", Detail: "only the session's owner removes other participants"}
		}
		return MembersPlan{Remove: []string{target}}, nil
	})
}

// check refuses a change by userID to a session that is not theirs or not a group.
func (st MembersState) check(userID string) error {
	if !slices.Contains(st.Members, userID) {
		return notFound()
	}
	if st.Type != TypeGroup {
		return notAGroup()
	}
	return nil
}

// changeMembers stores a change with its events and forgets the cached list.
func (s *Service) changeMembers(ctx context.Context, by, sessionID string, decide func(MembersState) (MembersPlan, error)) error {
	_, err := s.store.ChangeMembers(ctx, sessionID, decide, func(ctx context.Context, tx *sql.Tx, c MembersChanged) error {
		return s.events.Stored(ctx, tx, membersEvents(by, c)...)
	})
	// Forget even after a failure: a commit whose answer was lost may
	// have changed the membership all the same.
	s.members.forget(sessionID)
	if err != nil {
		return s.mapNotFound(fmt.Errorf("change members of session %s: %w", sessionID, err))
	}
	return nil
}

// membersEvents are the events of a change: a session event for the added
// users (so that a client knows the session before it hears of members),
// then members to the topic and to everyone before or after it.
func membersEvents(by string, c MembersChanged) []Event {
	everyone := slices.Clone(c.Before)
	for _, u := range c.After {
		if !slices.Contains(everyone, u) {
			everyone = append(everyone, u)
		}
	}
	added, removed := c.Added, c.Removed
	if added == nil {
		added = []string{}
	}
	if removed == nil {
		removed = []string{}
	}
	var evs []Event
	if c.Session != nil && len(c.Added) > 0 {
		evs = append(evs, Event{Type: EventSession, Session: c.Session, Participants: c.Added})
	}
	return append(evs, Event{Type: EventMembers, SessionID: c.SessionID, Added: added, Removed: removed, By: by, Participants: everyone})
}

func notAGroup() error {
	return invalid("not_a_group", "participants of a direct session cannot change")
}
