package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/chat-service/chat/modules/chat"
)

// AppendMessage stores m with the next seq of its session. The seq comes
// from UPDATE chat_sessions ... RETURNING last_seq, which also locks the
// session row until commit: sends to one session are serialized, so seqs are
// gapless and ordered. A retried ClientMessageID meets its original in the
// INSERT's ON CONFLICT, which only happens while holding that lock, when
// every earlier send of it has committed and is visible to the lookup that
// follows (each READ COMMITTED statement takes a fresh snapshot).
func (s *Store) AppendMessage(ctx context.Context, m chat.NewMessage, inTx chat.TxHook[chat.Message]) (chat.Message, bool, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to session %s: %w", m.SessionID, err)
	}
	var (
		msg      chat.Message
		original *chat.Message
	)
	err = s.write(ctx, func(tx *sql.Tx) (bool, error) {
		if m.Redelivered {
			orig, found, err := s.storedCopy(ctx, tx, st, chat.NewMessage{ID: m.ID, SessionID: m.SessionID, Redelivered: true})
			if err != nil || found {
				original = &orig
				return false, err
			}
		}
		var inserted bool
		msg, inserted, err = s.appendOne(ctx, tx, st, m)
		if err != nil {
			return false, err
		}
		if !inserted {
			// The sender sent this ClientMessageID before (a NULL one never
			// conflicts): answer with that message and drop the seq bump.
			orig, err := scanMessage(tx.StmtContext(ctx, st.messageByClientID).QueryRowContext(ctx,
				m.SessionID, m.SenderID, m.ClientMessageID), m.SessionID)
			if err != nil {
				return false, fmt.Errorf("read original of client message %s: %w", m.ClientMessageID, err)
			}
			original = &orig
			return false, nil
		}
		if inTx != nil {
			if err := inTx(ctx, tx, msg); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append message to session %s: %w", m.SessionID, err)
	}
	if original != nil {
		return *original, false, nil
	}
	return msg, true, nil
}

// appendOne stores m with the next seq of its session and raises the
// sender's read marker, with the prepared statements, in tx. A sender who
// is not a participant is errNotFound. inserted is false when the insert
// met an earlier message with the same client id (ON CONFLICT DO NOTHING):
// the seq was taken nonetheless, so the caller rolls back or gives up.
func (s *Store) appendOne(ctx context.Context, tx *sql.Tx, st *stmts, m chat.NewMessage) (chat.Message, bool, error) {
	msg := chat.Message{
		ID: m.ID, SessionID: m.SessionID, SenderID: m.SenderID,
		ClientMessageID: m.ClientMessageID, Content: m.Content, CreatedAt: orNow(m.CreatedAt),
	}
	err := tx.StmtContext(ctx, st.bumpSeq).QueryRowContext(ctx,
		s.d.Time(msg.CreatedAt.Time), m.SessionID, m.SessionID, m.SenderID).Scan(&msg.Seq, &msg.MembersVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return msg, false, errNotFound()
	}
	if err != nil {
		return msg, false, err
	}
	res, err := tx.StmtContext(ctx, st.insertMessage).ExecContext(ctx, msg.ID, msg.SessionID, msg.Seq,
		msg.SenderID, nullString(msg.ClientMessageID), msg.Content, s.d.Time(msg.CreatedAt.Time))
	if err != nil {
		return msg, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return msg, false, err
	}
	// One's own messages are never unread.
	if _, err := tx.StmtContext(ctx, st.raiseRead).ExecContext(ctx, msg.Seq, msg.SessionID, msg.SenderID, msg.Seq); err != nil {
		return msg, false, err
	}
	return msg, true, nil
}

// scanMessage scans messageCols.
func scanMessage(row interface{ Scan(...any) error }, sessionID string) (chat.Message, error) {
	var (
		msg                      chat.Message
		cid                      sql.NullString
		created, edited, deleted timeCol
	)
	if err := row.Scan(&msg.ID, &msg.Seq, &msg.SenderID, &cid, &msg.Content, &created, &edited, &deleted); err != nil {
		return chat.Message{}, err
	}
	msg.SessionID, msg.ClientMessageID, msg.CreatedAt = sessionID, cid.String, created.T
	setEdits(&msg, edited, deleted)
	return msg, nil
}

// Messages pages a session's history, ascending by seq. With neither bound
// it is the latest page; BeforeSeq pages backwards, AfterSeq forwards; both
// select the range between them, from AfterSeq on. more is exact: one row
// beyond the limit is read.
func (s *Store) Messages(ctx context.Context, sessionID, userID string, q chat.HistoryQuery) ([]chat.Message, bool, error) {
	if q.Limit < 1 {
		return nil, false, fmt.Errorf("messages of session %s: limit %d: %w", sessionID, q.Limit, chat.ErrInvalid)
	}
	st, err := s.stmts(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("messages of session %s: %w", sessionID, err)
	}
	query, args, backwards := st.latest, []any{sessionID, sessionID, userID}, true
	switch {
	case q.AfterSeq != nil && q.BeforeSeq != nil:
		query, backwards = st.between, false
		args = append(args, *q.AfterSeq, *q.BeforeSeq)
	case q.AfterSeq != nil:
		query, backwards = st.after, false
		args = append(args, *q.AfterSeq)
	case q.BeforeSeq != nil:
		query = st.before
		args = append(args, *q.BeforeSeq)
	}
	args = append(args, q.Limit+1)
	list, err := messages(ctx, query, sessionID, args)
	if err != nil {
		return nil, false, fmt.Errorf("messages of session %s: %w", sessionID, classify(err))
	}
	if len(list) == 0 {
		// The query only returns rows to members; tell "none" from "not yours".
		var one int
		err := st.isMember.QueryRowContext(ctx, sessionID, userID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("messages of session %s: %w", sessionID, errNotFound())
		}
		if err != nil {
			return nil, false, fmt.Errorf("messages of session %s: %w", sessionID, classify(err))
		}
		return []chat.Message{}, false, nil
	}
	more := len(list) > q.Limit
	if more {
		list = list[:q.Limit]
	}
	if backwards {
		slices.Reverse(list)
	}
	return list, more, nil
}

func messages(ctx context.Context, query *sql.Stmt, sessionID string, args []any) ([]chat.Message, error) {
	rows, err := query.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []chat.Message
	for rows.Next() {
		m, err := scanMessage(rows, sessionID)
		if err != nil {
			return nil, err
		}
		list = append(list, m)
	}
	return list, rows.Err()
}

// MarkRead raises userID's lastReadSeq to min(seq, lastSeq). It never lowers
// it: the UPDATE only matches a smaller value, so concurrent marks settle on
// the largest. Nothing is written, and inTx not called, when it would not move.
func (s *Store) MarkRead(ctx context.Context, sessionID, userID string, seq int64, inTx chat.ReadHook) (int64, bool, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("mark read in session %s: %w", sessionID, err)
	}
	var lastSeq, cur int64
	err = st.readState.QueryRowContext(ctx, sessionID, userID).Scan(&lastSeq, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("mark read in session %s: %w", sessionID, errNotFound())
	}
	if err != nil {
		return 0, false, fmt.Errorf("mark read in session %s: %w", sessionID, classify(err))
	}
	target := min(seq, lastSeq)
	if target <= cur {
		return cur, false, nil
	}
	changed := false
	err = s.write(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.StmtContext(ctx, st.raiseRead).ExecContext(ctx, target, sessionID, userID, target)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 0 {
			// A concurrent mark (or send) moved it at least as far.
			return false, tx.StmtContext(ctx, st.currentRead).QueryRowContext(ctx, sessionID, userID).Scan(&cur)
		}
		participants, err := participantIDs(ctx, tx.StmtContext(ctx, st.participantIDs), sessionID)
		if err != nil {
			return false, err
		}
		if inTx != nil {
			if err := inTx(ctx, tx, target, participants); err != nil {
				return false, err
			}
		}
		cur, changed = target, true
		return true, nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("mark read in session %s: %w", sessionID, err)
	}
	return cur, changed, nil
}
