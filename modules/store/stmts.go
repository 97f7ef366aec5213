package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/chat-service/chat/modules/chat"
)

// stmts are the fixed queries, prepared once per Store. Without them SQLite
// parses every statement's text again on every call; with them database/sql
// keeps one prepared statement per connection and reuses it, in
// transactions too (tx.StmtContext). A connection opened later, such as
// after an outage, prepares the statement again on first use.
//
// Statements whose text varies with the call (the member rows of
// CreateSession, the participants of a page of sessions) are not here.
type stmts struct {
	insertSession, sessionByDirectKey                            *sql.Stmt
	sessionOne, sessionPage, sessionPageAfter, participantsOfOne *sql.Stmt
	participantIDs, unread                                       *sql.Stmt
	bumpSeq, insertMessage, messageByClientID, messageByID       *sql.Stmt
	readState, raiseRead, currentRead, isMember                  *sql.Stmt
	latest, before, after, between                               *sql.Stmt

	all []*sql.Stmt // every one prepared, for close
}

// prepareStmts prepares every statement of stmts from q, or none.
func prepareStmts(ctx context.Context, db *sql.DB, q queries) (*stmts, error) {
	st := &stmts{}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&st.insertSession, q.insertSession},
		{&st.sessionByDirectKey, q.sessionByDirectKey},
		{&st.sessionOne, q.sessionOne},
		{&st.sessionPage, q.sessionPage},
		{&st.sessionPageAfter, q.sessionPageAfter},
		{&st.participantsOfOne, q.participantsOfOne},
		{&st.participantIDs, q.participantIDs},
		{&st.unread, q.unread},
		{&st.bumpSeq, q.bumpSeq},
		{&st.insertMessage, q.insertMessage},
		{&st.messageByClientID, q.messageByClientID},
		{&st.messageByID, q.messageByID},
		{&st.readState, q.readState},
		{&st.raiseRead, q.raiseRead},
		{&st.currentRead, q.currentRead},
		{&st.isMember, q.isMember},
		{&st.latest, q.latest},
		{&st.before, q.before},
		{&st.after, q.after},
		{&st.between, q.between},
	} {
		stmt, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			_ = st.close() // the prepare error is the one to report
			return nil, err
		}
		*p.dst = stmt
		st.all = append(st.all, stmt)
	}
	return st, nil
}

// close closes the statements prepared so far.
func (st *stmts) close() error {
	errs := make([]error, len(st.all))
	for i, stmt := range st.all {
		errs[i] = stmt.Close()
	}
	return errors.Join(errs...)
}

// errStoreClosed answers calls made after Close.
var errStoreClosed = fmt.Errorf("%w: store is closed", chat.ErrUnavailable)

// stmts returns the prepared statements, preparing them on first use. Call
// it before taking a connection for a transaction: preparing needs one of
// its own, and the pool may have no other. A failure (the database is down)
// is classified and not remembered; the next call tries again.
func (s *Store) stmts(ctx context.Context) (*stmts, error) {
	if st := s.prepared.Load(); st != nil {
		return st, nil
	}
	s.prepareMu.Lock()
	defer s.prepareMu.Unlock()
	if s.closed {
		return nil, errStoreClosed
	}
	if st := s.prepared.Load(); st != nil {
		return st, nil
	}
	st, err := prepareStmts(ctx, s.db, s.q)
	if err != nil {
		return nil, fmt.Errorf("prepare statements: %w", classify(err))
	}
	s.prepared.Store(st)
	return st, nil
}

// Close closes the store's prepared statements; the pool is DB's to close.
// Calls after Close answer chat.ErrUnavailable.
func (s *Store) Close() error {
	s.prepareMu.Lock()
	defer s.prepareMu.Unlock()
	s.closed = true
	st := s.prepared.Swap(nil)
	if st == nil {
		return nil
	}
	return st.close()
}
