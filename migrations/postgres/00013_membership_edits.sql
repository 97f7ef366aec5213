-- Membership changes and message edits.
-- creator_id: the session's owner (NULL for sessions created before it was kept).
-- members_version: bumped by every membership change, so that a send routing its
-- event with a cached participant list learns, under the session's lock, that
-- the list is stale. edited_at / deleted_at: NULL until edited / deleted (a
-- deleted message keeps its row and seq, with empty content: a tombstone).
-- Adding nullable columns, or one with a constant default, rewrites no table.

-- +goose Up
ALTER TABLE chat_sessions ADD COLUMN creator_id text;
ALTER TABLE chat_sessions ADD COLUMN members_version bigint NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN edited_at timestamptz;
ALTER TABLE chat_messages ADD COLUMN deleted_at timestamptz;

-- +goose Down
ALTER TABLE chat_messages DROP COLUMN deleted_at;
ALTER TABLE chat_messages DROP COLUMN edited_at;
ALTER TABLE chat_sessions DROP COLUMN members_version;
ALTER TABLE chat_sessions DROP COLUMN creator_id;
