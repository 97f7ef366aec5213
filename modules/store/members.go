package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
)

// Membership changes of group sessions, and what sends need to know of
// them: the membership version, read under the session's lock.

// Participants returns the user ids of a session and its membership
// version, read in one statement.
func (s *Store) Participants(ctx context.Context, sessionID string) ([]string, int64, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT m.user_id, s.members_version
		FROM chat_session_members m JOIN chat_sessions s ON s.id = m.session_id
		WHERE m.session_id = ? ORDER BY m.joined_at, m.user_id`), sessionID)
	if err != nil {
		return nil, 0, fmt.Errorf("participants of session %s: %w", sessionID, classify(err))
	}
	defer rows.Close()
	var (
		users   []string
		version int64
	)
	for rows.Next() {
		var u string
		if err := rows.Scan(&u, &version); err != nil {
			return nil, 0, fmt.Errorf("participants of session %s: %w", sessionID, classify(err))
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("participants of session %s: %w", sessionID, classify(err))
	}
	if len(users) == 0 {
		return nil, 0, fmt.Errorf("participants of session %s: %w", sessionID, errNotFound())
	}
	return users, version, nil
}

// ParticipantsTx returns a session's participants inside tx.
func (s *Store) ParticipantsTx(ctx context.Context, tx *sql.Tx, sessionID string) ([]string, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("participants of session %s: %w", sessionID, err)
	}
	users, err := participantIDs(ctx, tx.StmtContext(ctx, st.participantIDs), sessionID)
	if err != nil {
		return nil, fmt.Errorf("participants of session %s: %w", sessionID, classify(err))
	}
	return users, nil
}

// lockedSession is a session row read under its lock.
type lockedSession struct {
	typ, creator string
	lastSeq      int64
}

// lockSession reads a session's row and, on PostgreSQL, locks it until
// commit (the lock sends take with their seq bump); SQLite has one writer.
// errNotFound when there is no such session.
func (s *Store) lockSession(ctx context.Context, tx *sql.Tx, id string) (lockedSession, error) {
	q := `SELECT type, creator_id, last_seq FROM chat_sessions WHERE id = ?`
	if s.d.Name == config.DriverPostgres {
		q += ` FOR UPDATE`
	}
	var (
		ls      lockedSession
		creator sql.NullString
	)
	err := tx.QueryRowContext(ctx, s.d.Rebind(q), id).Scan(&ls.typ, &creator, &ls.lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return ls, errNotFound()
	}
	ls.creator = creator.String
	return ls, err
}

// ChangeMembers applies a membership change decided under the session's lock.
func (s *Store) ChangeMembers(ctx context.Context, sessionID string, decide func(chat.MembersState) (chat.MembersPlan, error), inTx chat.TxHook[chat.MembersChanged]) (chat.MembersChanged, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return chat.MembersChanged{}, fmt.Errorf("change members of session %s: %w", sessionID, err)
	}
	var out chat.MembersChanged
	err = s.write(ctx, func(tx *sql.Tx) (bool, error) {
		ls, err := s.lockSession(ctx, tx, sessionID)
		if err != nil {
			return false, err
		}
		before, err := participantIDs(ctx, tx.StmtContext(ctx, st.participantIDs), sessionID)
		if err != nil {
			return false, err
		}
		plan, err := decide(chat.MembersState{Type: ls.typ, CreatorID: ls.creator, Members: slices.Clone(before)})
		if err != nil {
			return false, err
		}
		out = chat.MembersChanged{SessionID: sessionID, Before: before, After: before}
		for _, u := range plan.Add {
			if !slices.Contains(before, u) && !slices.Contains(out.Added, u) {
				out.Added = append(out.Added, u)
			}
		}
		for _, u := range plan.Remove {
			if slices.Contains(before, u) && !slices.Contains(out.Removed, u) && !slices.Contains(out.Added, u) {
				out.Removed = append(out.Removed, u)
			}
		}
		if !out.Changed() {
			return false, nil
		}
		if err := s.writeMembers(ctx, tx, sessionID, ls.lastSeq, out.Added, out.Removed); err != nil {
			return false, err
		}
		out.After = slices.DeleteFunc(slices.Clone(before), func(u string) bool { return slices.Contains(out.Removed, u) })
		out.After = append(out.After, out.Added...)
		if len(out.Added) > 0 {
			list, err := s.sessionsIn(ctx, tx, st, st.sessionOne, out.Added[0], out.Added[0], sessionID)
			if err != nil {
				return false, err
			}
			if len(list) == 1 {
				out.Session = &list[0]
			}
		}
		if inTx != nil {
			if err := inTx(ctx, tx, out); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return chat.MembersChanged{}, fmt.Errorf("change members of session %s: %w", sessionID, err)
	}
	return out, nil
}

// writeMembers inserts added members (read up to lastSeq: they join now),
// deletes removed ones and bumps the membership version.
func (s *Store) writeMembers(ctx context.Context, tx *sql.Tx, sessionID string, lastSeq int64, added, removed []string) error {
	now := s.d.Time(chat.Now().Time)
	if len(added) > 0 {
		args := make([]any, 0, 4*len(added))
		values := make([]string, len(added))
		for i, u := range added {
			values[i] = "(?, ?, ?, ?)"
			args = append(args, sessionID, u, lastSeq, now)
		}
		if _, err := tx.ExecContext(ctx, s.d.Rebind(s.q.insertMemberPrefix+strings.Join(values, ", ")), args...); err != nil {
			return err
		}
	}
	if len(removed) > 0 {
		args := []any{sessionID}
		for _, u := range removed {
			args = append(args, u)
		}
		q := `DELETE FROM chat_session_members WHERE session_id = ? AND user_id IN (` + placeholders(len(removed)) + `)`
		if _, err := tx.ExecContext(ctx, s.d.Rebind(q), args...); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, s.d.Rebind(`UPDATE chat_sessions SET members_version = members_version + 1 WHERE id = ?`), sessionID)
	return err
}

// roleOf is a participant's role: the creator owns the session.
func roleOf(userID, creatorID string) string {
	if creatorID != "" && userID == creatorID {
		return chat.RoleOwner
	}
	return chat.RoleMember
}

// setEdits sets a scanned message's edit state from its edited_at and
// deleted_at columns.
func setEdits(m *chat.Message, edited, deleted timeCol) {
	if edited.Valid {
		t := edited.T
		m.EditedAt = &t
	}
	m.Deleted = deleted.Valid
}
