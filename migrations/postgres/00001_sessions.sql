-- Sessions and their members. Ids are UUIDv7 strings kept as text, like user
-- ids, so both dialects compare and order them the same way.

-- +goose Up
CREATE TABLE chat_sessions (
    id              text        PRIMARY KEY,
    type            text        NOT NULL CHECK (type IN ('direct', 'group')),
    title           text,
    -- the sorted participant pair of a direct session; NULL for groups
    direct_key      text        UNIQUE,
    -- the seq of the newest message; bumped by UPDATE ... RETURNING in the send tx
    last_seq        bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    last_message_at timestamptz
);

-- Session lists sort by last activity (last message, else creation), newest
-- first, ties by id: this is that order, usable for the keyset cursor.
CREATE INDEX chat_sessions_activity_idx
    ON chat_sessions ((COALESCE(last_message_at, created_at)) DESC, id DESC);

CREATE TABLE chat_session_members (
    session_id    text        NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    user_id       text        NOT NULL,
    last_read_seq bigint      NOT NULL DEFAULT 0,
    joined_at     timestamptz NOT NULL,
    PRIMARY KEY (session_id, user_id)
);

-- A user's sessions (lists, unread) without touching the heap.
CREATE INDEX chat_session_members_user_idx
    ON chat_session_members (user_id, session_id) INCLUDE (last_read_seq);

-- +goose Down
DROP TABLE chat_session_members;
DROP TABLE chat_sessions;
