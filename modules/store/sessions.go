package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/chat-service/chat/modules/chat"
)

// CreateSession stores a new session with its members. A direct session
// whose DirectKey exists already is returned as the creator sees it, with
// created=false; the unique direct_key decides concurrent creations
// (INSERT ... ON CONFLICT DO NOTHING waits for the competing transaction).
func (s *Store) CreateSession(ctx context.Context, ns chat.NewSession, inTx chat.TxHook[chat.Session]) (chat.Session, bool, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return chat.Session{}, false, fmt.Errorf("create session %s: %w", ns.ID, err)
	}
	users := members(ns.CreatorID, ns.Participants)
	created := orNow(ns.CreatedAt)
	sess := chat.Session{
		ID: ns.ID, Type: ns.Type, Title: ns.Title, CreatedAt: created,
		LastActivity: created, Participants: make([]chat.Participant, len(users)),
	}
	for i, u := range users {
		sess.Participants[i] = chat.Participant{UserID: u, Role: roleOf(u, ns.CreatorID)}
	}
	exists := false
	err = s.write(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.StmtContext(ctx, st.insertSession).ExecContext(ctx,
			ns.ID, ns.Type, ns.Title, nullString(ns.DirectKey), s.d.Time(created.Time), nullString(ns.CreatorID))
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 0 {
			exists = true
			return false, nil
		}
		args := make([]any, 0, 3*len(users))
		values := make([]string, len(users))
		for i, u := range users {
			values[i] = "(?, ?, 0, ?)"
			args = append(args, ns.ID, u, s.d.Time(created.Time))
		}
		q := s.d.Rebind(s.q.insertMemberPrefix + strings.Join(values, ", "))
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return false, err
		}
		if inTx != nil {
			if err := inTx(ctx, tx, sess); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return chat.Session{}, false, fmt.Errorf("create session %s: %w", ns.ID, err)
	}
	if !exists {
		return sess, true, nil
	}
	var id string
	if err := st.sessionByDirectKey.QueryRowContext(ctx, ns.DirectKey).Scan(&id); err != nil {
		return chat.Session{}, false, fmt.Errorf("create session %s: find direct session: %w", ns.ID, classify(err))
	}
	existing, err := s.Session(ctx, id, ns.CreatorID)
	if err != nil {
		return chat.Session{}, false, err
	}
	return existing, false, nil
}

// members is the sorted, deduplicated participant list, the creator included.
func members(creator string, participants []string) []string {
	users := append([]string{creator}, participants...)
	users = slices.DeleteFunc(users, func(u string) bool { return u == "" })
	slices.Sort(users)
	return slices.Compact(users)
}

// Session returns the session as userID sees it.
func (s *Store) Session(ctx context.Context, id, userID string) (chat.Session, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return chat.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	list, err := s.sessions(ctx, st, st.sessionOne, userID, userID, id)
	if err != nil {
		return chat.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	if len(list) == 0 {
		return chat.Session{}, fmt.Errorf("session %s: %w", id, errNotFound())
	}
	return list[0], nil
}

// Sessions lists userID's sessions, newest activity first, after the cursor.
func (s *Store) Sessions(ctx context.Context, userID string, limit int, after *chat.SessionCursor) ([]chat.Session, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("list sessions of %s: limit %d: %w", userID, limit, chat.ErrInvalid)
	}
	st, err := s.stmts(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("list sessions of %s: %w", userID, err)
	}
	var list []chat.Session
	if after == nil {
		list, err = s.sessions(ctx, st, st.sessionPage, userID, userID, limit+1)
	} else {
		list, err = s.sessions(ctx, st, st.sessionPageAfter, userID, userID,
			s.d.Time(after.Activity.Time), after.ID, limit+1)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list sessions of %s: %w", userID, err)
	}
	more := len(list) > limit
	if more {
		list = list[:limit]
	}
	return list, more, nil
}

// sessions runs a sessionSelect query, then loads the participants of every
// returned session in one more query.
func (s *Store) sessions(ctx context.Context, st *stmts, query *sql.Stmt, args ...any) ([]chat.Session, error) {
	return s.sessionsIn(ctx, nil, st, query, args...)
}

// sessionsIn is sessions, inside tx when it is not nil.
func (s *Store) sessionsIn(ctx context.Context, tx *sql.Tx, st *stmts, query *sql.Stmt, args ...any) ([]chat.Session, error) {
	one, q := st.participantsOfOne, s.db.QueryContext
	if tx != nil {
		query, one, q = tx.StmtContext(ctx, query), tx.StmtContext(ctx, one), tx.QueryContext
	}
	rows, err := query.QueryContext(ctx, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var (
		list     []chat.Session
		creators []string // creator of list[i]; "" unknown
	)
	byID := map[string]int{}
	for rows.Next() {
		var (
			ss                      chat.Session
			title                   sql.NullString
			created, lastMsgAt, lmT timeCol
			lastRead                int64
			lmID, lmSender, lmCID   sql.NullString
			lmContent, creator      sql.NullString
			lmEdited, lmDeleted     timeCol
		)
		if err := rows.Scan(&ss.ID, &ss.Type, &title, &ss.LastSeq, &created, &lastMsgAt, &lastRead,
			&ss.Unread, &lmID, &lmSender, &lmCID, &lmContent, &lmT, &lmEdited, &lmDeleted, &creator); err != nil {
			return nil, classify(err)
		}
		if title.Valid {
			ss.Title = &title.String
		}
		ss.CreatedAt, ss.LastActivity = created.T, created.T
		if lastMsgAt.Valid {
			ss.LastActivity = lastMsgAt.T
		}
		if lmID.Valid {
			ss.LastMessage = &chat.Message{
				ID: lmID.String, SessionID: ss.ID, Seq: ss.LastSeq, SenderID: lmSender.String,
				ClientMessageID: lmCID.String, Content: lmContent.String, CreatedAt: lmT.T,
			}
			setEdits(ss.LastMessage, lmEdited, lmDeleted)
		}
		byID[ss.ID] = len(list)
		creators = append(creators, creator.String)
		list = append(list, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	ids := make([]any, len(list))
	for i, ss := range list {
		ids[i] = ss.ID
	}
	var prows *sql.Rows
	if len(ids) == 1 {
		prows, err = one.QueryContext(ctx, ids...)
	} else {
		prows, err = q(ctx, s.d.Rebind(fmt.Sprintf(s.q.participants, placeholders(len(ids)))), ids...)
	}
	if err != nil {
		return nil, classify(err)
	}
	defer prows.Close()
	for prows.Next() {
		var (
			sid string
			p   chat.Participant
		)
		if err := prows.Scan(&sid, &p.UserID, &p.LastReadSeq); err != nil {
			return nil, classify(err)
		}
		if i, ok := byID[sid]; ok {
			p.Role = roleOf(p.UserID, creators[i])
			list[i].Participants = append(list[i].Participants, p)
		}
	}
	return list, classify(prows.Err())
}

// participantIDs runs the participantIDs statement (or its form in a
// transaction).
func participantIDs(ctx context.Context, stmt *sql.Stmt, sessionID string) ([]string, error) {
	rows, err := stmt.QueryContext(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// Unread lists userID's sessions with unread messages, newest activity first.
func (s *Store) Unread(ctx context.Context, userID string) ([]chat.UnreadCount, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("unread of %s: %w", userID, err)
	}
	rows, err := st.unread.QueryContext(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("unread of %s: %w", userID, classify(err))
	}
	defer rows.Close()
	list := []chat.UnreadCount{}
	for rows.Next() {
		var u chat.UnreadCount
		if err := rows.Scan(&u.SessionID, &u.Unread); err != nil {
			return nil, fmt.Errorf("unread of %s: %w", userID, classify(err))
		}
		list = append(list, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unread of %s: %w", userID, classify(err))
	}
	return list, nil
}
