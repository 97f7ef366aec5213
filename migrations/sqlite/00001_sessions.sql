-- Sessions and their members; mirrors postgres/00001_sessions.sql. Times are
-- integer unix milliseconds (UTC).

-- +goose Up
CREATE TABLE chat_sessions (
    id              TEXT    PRIMARY KEY,
    type            TEXT    NOT NULL CHECK (type IN ('direct', 'group')),
    title           TEXT,
    direct_key      TEXT    UNIQUE,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_message_at INTEGER
) STRICT;

CREATE INDEX chat_sessions_activity_idx
    ON chat_sessions (COALESCE(last_message_at, created_at) DESC, id DESC);

CREATE TABLE chat_session_members (
    session_id    TEXT    NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at     INTEGER NOT NULL,
    PRIMARY KEY (session_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX chat_session_members_user_idx
    ON chat_session_members (user_id, session_id, last_read_seq);

-- +goose Down
DROP TABLE chat_session_members;
DROP TABLE chat_sessions;
