package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/chat-service/chat/modules/chat"
)

// ChangeMessage edits or deletes one message, decided under the session's
// lock. A delete keeps the row as a tombstone: same seq, empty content,
// deleted_at set.
func (s *Store) ChangeMessage(ctx context.Context, sessionID, userID string, seq int64, decide func(chat.Message) (chat.MessageChange, bool, error), inTx chat.ChangeHook) (chat.Message, bool, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("change message %d of session %s: %w", seq, sessionID, err)
	}
	var (
		msg     chat.Message
		changed bool
	)
	err = s.write(ctx, func(tx *sql.Tx) (bool, error) {
		changed = false
		if _, err := s.lockSession(ctx, tx, sessionID); err != nil {
			return false, err
		}
		var one int
		err := tx.StmtContext(ctx, st.isMember).QueryRowContext(ctx, sessionID, userID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, errNotFound()
		}
		if err != nil {
			return false, err
		}
		msg, err = scanMessage(tx.QueryRowContext(ctx, s.d.Rebind(`SELECT `+messageCols+
			` FROM chat_messages WHERE session_id = ? AND seq = ?`), sessionID, seq), sessionID)
		if errors.Is(err, sql.ErrNoRows) {
			return false, chat.ErrMessageNotFound()
		}
		if err != nil {
			return false, err
		}
		change, apply, err := decide(msg)
		if err != nil || !apply {
			return false, err
		}
		at := orNow(change.At)
		if change.Delete {
			_, err = tx.ExecContext(ctx, s.d.Rebind(`UPDATE chat_messages SET content = '', deleted_at = ?
				WHERE session_id = ? AND seq = ?`), s.d.Time(at.Time), sessionID, seq)
			msg.Content, msg.Deleted = "", true
		} else {
			_, err = tx.ExecContext(ctx, s.d.Rebind(`UPDATE chat_messages SET content = ?, edited_at = ?
				WHERE session_id = ? AND seq = ?`), change.Content, s.d.Time(at.Time), sessionID, seq)
			msg.Content, msg.EditedAt = change.Content, &at
		}
		if err != nil {
			return false, err
		}
		participants, err := participantIDs(ctx, tx.StmtContext(ctx, st.participantIDs), sessionID)
		if err != nil {
			return false, err
		}
		if inTx != nil {
			if err := inTx(ctx, tx, msg, participants); err != nil {
				return false, err
			}
		}
		changed = true
		return true, nil
	})
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("change message %d of session %s: %w", seq, sessionID, err)
	}
	return msg, changed, nil
}
