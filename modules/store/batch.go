package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/chat-service/chat/modules/chat"
)

// AppendMessages stores a batch of messages in one transaction (group
// commit), with one commit for the batch. On SQLite the items run one after
// another with the prepared statements of single sends (appendEach: in
// process, a statement costs no round trip). On PostgreSQL a handful of
// statements serve the whole batch (appendMultiRow), in order:
//
//  1. lock the sessions in id order (PostgreSQL: FOR UPDATE, so concurrent
//     batches never deadlock) and read their last_seq, joined with the
//     members among the senders: an item whose sender is not a member
//     fails alone with session_not_found;
//  2. look up earlier copies of items that may have been stored before (a
//     clientMessageId, or an id carried by a redelivered command); a
//     duplicate, also within the batch, answers with the original;
//  3. give the rest seqs after last_seq in batch order, per session;
//  4. one UPDATE of the sessions, one multi-row INSERT of the messages, one
//     UPDATE of the senders' read markers, then inTx with the new messages
//     (the outbox rows), and commit.
//
// The locks taken in step 1 make steps 2-4 race-free against other
// batches and single sends of the same sessions. A constraint violation
// nonetheless (a duplicate no lookup could see, such as one committed by
// a transaction that began after ours read) rolls the batch back and
// stores its items one at a time, so that one item never fails the others.
// Any other error fails the whole batch, and nothing of it is written.
func (s *Store) AppendMessages(ctx context.Context, items []chat.NewMessage, inTx chat.TxHook[[]chat.Message]) ([]chat.Appended, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]chat.Appended, len(items))
	err := s.write(ctx, func(tx *sql.Tx) (bool, error) {
		clear(out)
		return s.appendBatch(ctx, tx, items, out, inTx)
	})
	if err == nil {
		return out, nil
	}
	if !isConstraint(err) && !errors.Is(err, errSurprise) {
		return nil, fmt.Errorf("append %d messages: %w", len(items), err)
	}
	for i, m := range items {
		msg, created, err := s.AppendMessage(ctx, m, func(ctx context.Context, tx *sql.Tx, msg chat.Message) error {
			if inTx == nil {
				return nil
			}
			return inTx(ctx, tx, []chat.Message{msg})
		})
		out[i] = chat.Appended{Message: msg, Created: created, Err: err}
	}
	return out, nil
}

// memberKey is a sender in a session.
type memberKey struct{ session, user string }

// clientKey identifies a message by its client id.
type clientKey struct{ session, sender, client string }

func (s *Store) appendBatch(ctx context.Context, tx *sql.Tx, items []chat.NewMessage, out []chat.Appended, inTx chat.TxHook[[]chat.Message]) (bool, error) {
	var (
		stored []chat.Message
		err    error
	)
	if s.writer != nil {
		stored, err = s.appendEach(ctx, tx, items, out)
	} else {
		stored, err = s.appendMultiRow(ctx, tx, items, out)
	}
	if err != nil || len(stored) == 0 {
		return false, err // nothing to write: duplicates and refusals only
	}
	if inTx != nil {
		if err := inTx(ctx, tx, stored); err != nil {
			return false, err
		}
	}
	return true, nil
}

// appendEach stores items one after another with the prepared statements
// of single sends, in the one transaction. On SQLite, which runs in
// process and has one writer, a statement costs no round trip, while
// parsing the text of a multi-row statement (different for every batch
// size) cost more than executing prepared ones: in the profile of REST
// sends, preparing took a quarter of the batch's CPU. The write lock is
// held from BEGIN IMMEDIATE, so a duplicate lookup cannot race.
func (s *Store) appendEach(ctx context.Context, tx *sql.Tx, items []chat.NewMessage, out []chat.Appended) ([]chat.Message, error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return nil, err
	}
	var stored []chat.Message
	for i, m := range items {
		if orig, ok, err := s.storedCopy(ctx, tx, st, m); err != nil {
			return nil, err
		} else if ok {
			out[i].Message = orig
			continue
		}
		msg, inserted, err := s.appendOne(ctx, tx, st, m)
		switch {
		case errors.Is(err, chat.ErrNotFound):
			out[i].Err = err
			continue
		case err != nil:
			return nil, err
		case !inserted:
			return nil, errSurprise // looked up above; AppendMessages stores one at a time
		}
		out[i] = chat.Appended{Message: msg, Created: true}
		stored = append(stored, msg)
	}
	return stored, nil
}

// storedCopy finds the message m repeats, if it may repeat one: the same id
// (a redelivered command) or client id from the same sender in the session.
func (s *Store) storedCopy(ctx context.Context, tx *sql.Tx, st *stmts, m chat.NewMessage) (chat.Message, bool, error) {
	var row *sql.Row
	switch {
	case m.Redelivered:
		row = tx.StmtContext(ctx, st.messageByID).QueryRowContext(ctx, m.ID, m.SessionID)
	case m.ClientMessageID != "":
		row = tx.StmtContext(ctx, st.messageByClientID).QueryRowContext(ctx, m.SessionID, m.SenderID, m.ClientMessageID)
	default:
		return chat.Message{}, false, nil
	}
	orig, err := scanMessage(row, m.SessionID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if m.Redelivered && m.ClientMessageID != "" {
			return s.storedCopy(ctx, tx, st, chat.NewMessage{SessionID: m.SessionID, SenderID: m.SenderID, ClientMessageID: m.ClientMessageID})
		}
		return chat.Message{}, false, nil
	case err != nil:
		return chat.Message{}, false, err
	}
	return orig, true, nil
}

// errSurprise is a constraint violation found without the database
// raising one: AppendMessages answers it like one.
var errSurprise = errors.New("a message the batch looked up appeared meanwhile")

// isConstraint reports a unique or foreign key violation.
func isConstraint(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "23")
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	return false
}
