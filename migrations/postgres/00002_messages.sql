-- Messages. seq is gapless per session; (session, sender, client_message_id)
-- makes a retried send idempotent (NULL client ids never collide).

-- +goose Up
CREATE TABLE chat_messages (
    id                text        PRIMARY KEY,
    session_id        text        NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq               bigint      NOT NULL,
    sender_id         text        NOT NULL,
    client_message_id text,
    content           text        NOT NULL,
    created_at        timestamptz NOT NULL,
    CONSTRAINT chat_messages_client_message_id_key UNIQUE (session_id, sender_id, client_message_id)
);

-- UNIQUE (session_id, seq); sender_id is included so unread counts
-- (seq > last_read_seq AND sender_id <> me) are index-only scans.
CREATE UNIQUE INDEX chat_messages_session_seq_key
    ON chat_messages (session_id, seq) INCLUDE (sender_id);

-- +goose Down
DROP TABLE chat_messages;
