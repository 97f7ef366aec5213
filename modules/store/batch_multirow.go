package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/chat-service/chat/config"
	"github.com/chat-service/chat/modules/chat"
)

// The PostgreSQL side of AppendMessages: a few statements serve a whole
// batch, since each statement is a network round trip.

// appendMultiRow stores items with a few statements for the whole batch
// (PostgreSQL: each statement is a network round trip).
func (s *Store) appendMultiRow(ctx context.Context, tx *sql.Tx, items []chat.NewMessage, out []chat.Appended) ([]chat.Message, error) {
	var (
		sessions, users []string
		lookup          bool // some item may have been stored before
	)
	for _, m := range items {
		if !slices.Contains(sessions, m.SessionID) {
			sessions = append(sessions, m.SessionID)
		}
		if !slices.Contains(users, m.SenderID) {
			users = append(users, m.SenderID)
		}
		lookup = lookup || m.ClientMessageID != "" || m.Redelivered
	}
	slices.Sort(sessions)

	// 1. Lock the sessions and learn who may send to them.
	lastSeq, members, versions, err := s.lockSessions(ctx, tx, sessions, users)
	if err != nil {
		return nil, err
	}
	// 2. Earlier copies.
	byID := map[string]chat.Message{}
	byClient := map[clientKey]chat.Message{}
	if lookup {
		if err := s.findStored(ctx, tx, items, sessions, byID, byClient); err != nil {
			return nil, err
		}
	}
	// 3. Seqs in batch order.
	var (
		stored  []chat.Message
		touched = map[string]chat.Time{} // session → newest created_at
		reads   = map[memberKey]int64{}  // sender's read marker → seq
	)
	for i, m := range items {
		if !members[memberKey{m.SessionID, m.SenderID}] {
			out[i].Err = errNotFound()
			continue
		}
		ck := clientKey{m.SessionID, m.SenderID, m.ClientMessageID}
		if orig, ok := byID[m.ID]; ok {
			out[i].Message = orig
			continue
		}
		if m.ClientMessageID != "" {
			if orig, ok := byClient[ck]; ok {
				out[i].Message = orig
				continue
			}
		}
		lastSeq[m.SessionID]++
		msg := chat.Message{
			ID: m.ID, SessionID: m.SessionID, Seq: lastSeq[m.SessionID], SenderID: m.SenderID,
			ClientMessageID: m.ClientMessageID, Content: m.Content, CreatedAt: orNow(m.CreatedAt),
			MembersVersion: versions[m.SessionID],
		}
		out[i] = chat.Appended{Message: msg, Created: true}
		stored = append(stored, msg)
		byID[msg.ID] = msg
		if m.ClientMessageID != "" {
			byClient[ck] = msg
		}
		if t, ok := touched[m.SessionID]; !ok || t.Before(msg.CreatedAt.Time) {
			touched[m.SessionID] = msg.CreatedAt
		}
		reads[memberKey{m.SessionID, m.SenderID}] = msg.Seq
	}
	if len(stored) == 0 {
		return nil, nil
	}
	// 4. Write.
	if err := s.bumpSessions(ctx, tx, lastSeq, touched); err != nil {
		return nil, err
	}
	if err := s.insertMessages(ctx, tx, stored); err != nil {
		return nil, err
	}
	if err := s.raiseReads(ctx, tx, reads); err != nil {
		return nil, err
	}
	return stored, nil
}

// lockSessions locks the sessions (in id order on PostgreSQL; SQLite has
// one writer anyway) and returns their last_seq and which of users are
// members of which.
func (s *Store) lockSessions(ctx context.Context, tx *sql.Tx, sessions, users []string) (map[string]int64, map[memberKey]bool, map[string]int64, error) {
	q := `SELECT s.id, s.last_seq, s.members_version, m.user_id FROM chat_sessions s
		LEFT JOIN chat_session_members m ON m.session_id = s.id AND m.user_id IN (` + placeholders(len(users)) + `)
		WHERE s.id IN (` + placeholders(len(sessions)) + `) ORDER BY s.id`
	if s.d.Name == config.DriverPostgres {
		q += ` FOR UPDATE OF s`
	}
	args := make([]any, 0, len(users)+len(sessions))
	for _, u := range users {
		args = append(args, u)
	}
	for _, id := range sessions {
		args = append(args, id)
	}
	rows, err := tx.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	lastSeq := make(map[string]int64, len(sessions))
	versions := make(map[string]int64, len(sessions))
	members := make(map[memberKey]bool, len(users))
	for rows.Next() {
		var (
			id       string
			seq, ver int64
			user     sql.NullString
		)
		if err := rows.Scan(&id, &seq, &ver, &user); err != nil {
			return nil, nil, nil, err
		}
		lastSeq[id], versions[id] = seq, ver
		if user.Valid {
			members[memberKey{id, user.String}] = true
		}
	}
	return lastSeq, members, versions, rows.Err()
}

// findStored fills byID and byClient with the stored messages that items
// may repeat: the same id (a redelivered command) or the same client id
// from the same sender in the same session.
func (s *Store) findStored(ctx context.Context, tx *sql.Tx, items []chat.NewMessage, sessions []string, byID map[string]chat.Message, byClient map[clientKey]chat.Message) error {
	var (
		ids, clients []any
	)
	for _, m := range items {
		ids = append(ids, m.ID)
		if m.ClientMessageID != "" && !slices.Contains(clients, any(m.ClientMessageID)) {
			clients = append(clients, m.ClientMessageID)
		}
	}
	q := `SELECT session_id, ` + messageCols + ` FROM chat_messages WHERE id IN (` + placeholders(len(ids)) + `)`
	args := ids
	if len(clients) > 0 {
		q += ` OR (session_id IN (` + placeholders(len(sessions)) + `) AND client_message_id IN (` + placeholders(len(clients)) + `))`
		for _, id := range sessions {
			args = append(args, id)
		}
		args = append(args, clients...)
	}
	rows, err := tx.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			session                  string
			msg                      chat.Message
			cid                      sql.NullString
			created, edited, deleted timeCol
		)
		if err := rows.Scan(&session, &msg.ID, &msg.Seq, &msg.SenderID, &cid, &msg.Content, &created, &edited, &deleted); err != nil {
			return err
		}
		msg.SessionID, msg.ClientMessageID, msg.CreatedAt = session, cid.String, created.T
		setEdits(&msg, edited, deleted)
		byID[msg.ID] = msg
		if cid.Valid {
			byClient[clientKey{session, msg.SenderID, cid.String}] = msg
		}
	}
	return rows.Err()
}

// bumpSessions sets the sessions' last_seq and last_message_at.
func (s *Store) bumpSessions(ctx context.Context, tx *sql.Tx, lastSeq map[string]int64, touched map[string]chat.Time) error {
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	timeParam := "?"
	if s.d.Name == config.DriverPostgres {
		timeParam = "CAST(? AS timestamptz)" // a bare parameter inside CASE has no type
	}
	var seqCase, timeCase strings.Builder
	args := make([]any, 0, 5*len(ids))
	for _, id := range ids {
		seqCase.WriteString(" WHEN ? THEN CAST(? AS bigint)")
		args = append(args, id, lastSeq[id])
	}
	for _, id := range ids {
		timeCase.WriteString(" WHEN ? THEN " + timeParam)
		args = append(args, id, s.d.Time(touched[id].Time))
	}
	for _, id := range ids {
		args = append(args, id)
	}
	q := `UPDATE chat_sessions SET last_seq = CASE id` + seqCase.String() + ` END,
		last_message_at = CASE id` + timeCase.String() + ` END
		WHERE id IN (` + placeholders(len(ids)) + `)`
	_, err := tx.ExecContext(ctx, s.d.Rebind(q), args...)
	return err
}

// insertMessages inserts msgs in one statement. No ON CONFLICT: under the
// session locks a conflict is a surprise, and AppendMessages answers it by
// storing the items one at a time.
func (s *Store) insertMessages(ctx context.Context, tx *sql.Tx, msgs []chat.Message) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO chat_messages (id, session_id, seq, sender_id, client_message_id, content, created_at) VALUES `)
	args := make([]any, 0, 7*len(msgs))
	for i, m := range msgs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, m.ID, m.SessionID, m.Seq, m.SenderID, nullString(m.ClientMessageID), m.Content, s.d.Time(m.CreatedAt.Time))
	}
	_, err := tx.ExecContext(ctx, s.d.Rebind(q.String()), args...)
	return err
}

// raiseReads moves each sender's read marker up to its newest message:
// one's own messages are never unread.
func (s *Store) raiseReads(ctx context.Context, tx *sql.Tx, reads map[memberKey]int64) error {
	var (
		cases strings.Builder
		args  []any
		keys  []any
		in    []string
	)
	for k, seq := range reads {
		cases.WriteString(" WHEN session_id = ? AND user_id = ? THEN CAST(? AS bigint)")
		args = append(args, k.session, k.user, seq)
		keys = append(keys, k.session, k.user)
		in = append(in, "(?, ?)")
	}
	expr := "CASE" + cases.String() + " ELSE last_read_seq END"
	q := `UPDATE chat_session_members SET last_read_seq = ` + expr + `
		WHERE (session_id, user_id) IN (` + strings.Join(in, ", ") + `) AND last_read_seq < ` + expr
	all := make([]any, 0, 2*len(args)+len(keys))
	all = append(all, args...)
	all = append(all, keys...)
	all = append(all, args...)
	_, err := tx.ExecContext(ctx, s.d.Rebind(q), all...)
	return err
}
