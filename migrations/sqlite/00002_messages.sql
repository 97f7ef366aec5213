-- Messages; mirrors postgres/00002_messages.sql.

-- +goose Up
CREATE TABLE chat_messages (
    id                TEXT    PRIMARY KEY,
    session_id        TEXT    NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    sender_id         TEXT    NOT NULL,
    client_message_id TEXT,
    content           TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    UNIQUE (session_id, seq),
    UNIQUE (session_id, sender_id, client_message_id)
) STRICT;

-- +goose Down
DROP TABLE chat_messages;
