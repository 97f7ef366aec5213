package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chat-service/chat/modules/chat"
)

var _ chat.Store = (*Store)(nil)

// Store is chat.Store on SQLite or PostgreSQL: one implementation, the
// differences confined to Dialect. Hooks (chat.TxHook, chat.ReadHook) write
// through the transaction they are given and must not call back into the
// Store, whose SQLite writer they would wait for.
type Store struct {
	db *sql.DB
	d  Dialect
	q  queries
	// writer queues write transactions when the dialect takes one writer at
	// a time (SQLite); nil otherwise.
	writer chan struct{}

	onCommit atomic.Pointer[func()] // called after every committed write; nil: none

	prepared  atomic.Pointer[stmts] // nil until first use (see stmts)
	prepareMu sync.Mutex            // one preparer at a time; guards closed
	closed    bool
}

// New returns the store over db, which need not be reachable or migrated
// yet: statements are prepared on first use. Close releases them.
func New(db *DB) *Store {
	s := &Store{db: db.SQL, d: db.Dialect, q: buildQueries(db.Dialect)}
	if db.Dialect.SingleWriter {
		s.writer = make(chan struct{}, 1)
	}
	return s
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.Name, classify(err))
	}
	return nil
}

// write runs fn in a write transaction and commits when fn returns nil and
// commit is true; otherwise it rolls back. The returned error is fn's or the
// commit's, classified.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) (commit bool, err error)) error {
	if s.writer != nil {
		select {
		case s.writer <- struct{}{}:
			defer func() { <-s.writer }()
		case <-ctx.Done():
			return classify(ctx.Err())
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	commit, err := fn(tx)
	if err != nil || !commit {
		_ = tx.Rollback() // nothing was kept; fn's error (if any) is the one to report
		return classify(err)
	}
	if err := tx.Commit(); err != nil {
		return classify(err)
	}
	if f := s.onCommit.Load(); f != nil {
		(*f)()
	}
	return nil
}

// OnCommit sets f to be called after every write transaction commits; it
// must not block. Messaging wakes its outbox forwarder with it, so that
// an event is read as soon as it is visible rather than at the next poll.
func (s *Store) OnCommit(f func()) { s.onCommit.Store(&f) }

// timeCol scans a timestamp column of either dialect (timestamptz or unix
// milliseconds), NULL included.
type timeCol struct {
	T     chat.Time
	Valid bool
}

func (c *timeCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c = timeCol{}
	case time.Time:
		*c = timeCol{T: chat.NewTime(x), Valid: true}
	case int64:
		*c = timeCol{T: chat.NewTime(time.UnixMilli(x)), Valid: true}
	default:
		return fmt.Errorf("scan time: unsupported %T", v)
	}
	return nil
}

// nullString maps "" to NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// orNow fills a zero time.
func orNow(t chat.Time) chat.Time {
	if t.IsZero() {
		return chat.Now()
	}
	return chat.NewTime(t.Time)
}

// queries are the statements, rebound once for the dialect. All but the two
// templates (insertMemberPrefix, participants) are prepared (stmts).
type queries struct {
	insertSession, insertMemberPrefix, sessionByDirectKey  string
	sessionOne, sessionPage, sessionPageAfter              string
	participants, participantsOfOne, participantIDs        string
	unread                                                 string
	bumpSeq, messageByClientID, messageByID, insertMessage string
	readState, raiseRead, currentRead, isMember            string
	latest, before, after, between                         string
}

// sessionSelect reads sessions as the user sees them: one row per session,
// the page chosen first (%s: extra filter and LIMIT), then the last message
// and the unread count for just those rows.
const sessionSelect = `
SELECT p.id, p.type, p.title, p.last_seq, p.created_at, p.last_message_at, p.last_read_seq,
       (SELECT COUNT(*) FROM chat_messages c
         WHERE c.session_id = p.id AND c.seq > p.last_read_seq AND c.sender_id <> ?),
       lm.id, lm.sender_id, lm.client_message_id, lm.content, lm.created_at,
       lm.edited_at, lm.deleted_at, p.creator_id
FROM (
    SELECT s.id, s.type, s.title, s.last_seq, s.created_at, s.last_message_at, mb.last_read_seq, s.creator_id,
           COALESCE(s.last_message_at, s.created_at) AS activity
    FROM chat_session_members mb
    JOIN chat_sessions s ON s.id = mb.session_id
    WHERE mb.user_id = ? %s
) p
LEFT JOIN chat_messages lm ON lm.session_id = p.id AND lm.seq = p.last_seq
ORDER BY p.activity DESC, p.id DESC`

const messageCols = `id, seq, sender_id, client_message_id, content, created_at, edited_at, deleted_at`

// memberFilter returns rows only to a member, so the common case needs no
// separate membership query; it is not correlated, so it runs once.
const memberFilter = ` AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = ? AND user_id = ?)`

func buildQueries(d Dialect) queries {
	r := d.Rebind
	page := `ORDER BY COALESCE(s.last_message_at, s.created_at) DESC, s.id DESC LIMIT ?`
	msgs := `SELECT ` + messageCols + ` FROM chat_messages WHERE session_id = ?` + memberFilter
	participants := `SELECT session_id, user_id, last_read_seq FROM chat_session_members
			WHERE session_id IN (%s) ORDER BY session_id, joined_at, user_id`
	return queries{
		insertSession: r(`INSERT INTO chat_sessions (id, type, title, direct_key, last_seq, created_at, creator_id)
			VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (direct_key) DO NOTHING`),
		insertMemberPrefix: `INSERT INTO chat_session_members (session_id, user_id, last_read_seq, joined_at) VALUES `,
		sessionByDirectKey: r(`SELECT id FROM chat_sessions WHERE direct_key = ?`),
		sessionOne:         r(fmt.Sprintf(sessionSelect, `AND s.id = ?`)),
		sessionPage:        r(fmt.Sprintf(sessionSelect, page)),
		sessionPageAfter: r(fmt.Sprintf(sessionSelect,
			`AND (COALESCE(s.last_message_at, s.created_at), s.id) < (?, ?) `+page)),
		participants:      participants,
		participantsOfOne: r(fmt.Sprintf(participants, "?")),
		participantIDs:    r(`SELECT user_id FROM chat_session_members WHERE session_id = ? ORDER BY joined_at, user_id`),
		unread: r(`SELECT s.id, COUNT(*)
			FROM chat_session_members mb
			JOIN chat_sessions s ON s.id = mb.session_id AND s.last_seq > mb.last_read_seq
			JOIN chat_messages m ON m.session_id = mb.session_id AND m.seq > mb.last_read_seq AND m.sender_id <> mb.user_id
			WHERE mb.user_id = ?
			GROUP BY s.id
			ORDER BY COALESCE(s.last_message_at, s.created_at) DESC, s.id DESC`),
		bumpSeq: r(`UPDATE chat_sessions SET last_seq = last_seq + 1, last_message_at = ?
			WHERE id = ? AND EXISTS (SELECT 1 FROM chat_session_members WHERE session_id = ? AND user_id = ?)
			RETURNING last_seq, members_version`),
		messageByClientID: r(`SELECT ` + messageCols + ` FROM chat_messages
			WHERE session_id = ? AND sender_id = ? AND client_message_id = ?`),
		messageByID: r(`SELECT ` + messageCols + ` FROM chat_messages WHERE id = ? AND session_id = ?`),
		insertMessage: r(`INSERT INTO chat_messages (id, session_id, seq, sender_id, client_message_id, content, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, sender_id, client_message_id) DO NOTHING`),
		readState: r(`SELECT s.last_seq, mb.last_read_seq FROM chat_session_members mb
			JOIN chat_sessions s ON s.id = mb.session_id WHERE mb.session_id = ? AND mb.user_id = ?`),
		raiseRead: r(`UPDATE chat_session_members SET last_read_seq = ?
			WHERE session_id = ? AND user_id = ? AND last_read_seq < ?`),
		currentRead: r(`SELECT last_read_seq FROM chat_session_members WHERE session_id = ? AND user_id = ?`),
		isMember:    r(`SELECT 1 FROM chat_session_members WHERE session_id = ? AND user_id = ?`),
		latest:      r(msgs + ` ORDER BY seq DESC LIMIT ?`),
		before:      r(msgs + ` AND seq < ? ORDER BY seq DESC LIMIT ?`),
		after:       r(msgs + ` AND seq > ? ORDER BY seq ASC LIMIT ?`),
		between:     r(msgs + ` AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`),
	}
}

// ConcurrentWriters is how many group-commit batches are worth storing at
// once: one where the database takes one writer at a time (SQLite), a few
// on PostgreSQL, where one batch's statements overlap another's commit.
func (s *Store) ConcurrentWriters() int {
	if s.writer != nil {
		return 1
	}
	return pgBatchWriters
}

// pgBatchWriters: measured with the REST send benchmark (BENCHMARKS.md).
const pgBatchWriters = 2
