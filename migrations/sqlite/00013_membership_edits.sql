-- Membership changes and message edits; mirrors postgres/00020_membership_edits.sql.
-- creator_id: the session's owner (NULL for sessions created before it was kept).
-- members_version: bumped by every membership change, so that a send routing its
-- event with a cached participant list learns, under the session's lock, that
-- the list is stale. edited_at / deleted_at: NULL until edited / deleted.

-- +goose Up
ALTER TABLE chat_sessions ADD COLUMN creator_id TEXT;
ALTER TABLE chat_sessions ADD COLUMN members_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN edited_at INTEGER;
ALTER TABLE chat_messages ADD COLUMN deleted_at INTEGER;

-- +goose Down
ALTER TABLE chat_messages DROP COLUMN deleted_at;
ALTER TABLE chat_messages DROP COLUMN edited_at;
ALTER TABLE chat_sessions DROP COLUMN members_version;
ALTER TABLE chat_sessions DROP COLUMN creator_id;
