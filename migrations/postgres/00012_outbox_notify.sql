-- Wake-ups instead of polls (modules/messaging): every statement that
-- writes outbox rows notifies channel chat_outbox. PostgreSQL delivers the
-- notification when the transaction commits, to every instance listening,
-- so the instance that holds the forwarder lock reads the rows at once,
-- whichever instance wrote them. Notifications of one transaction are
-- folded into one; the forwarder's poll remains as a fallback.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION chat_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chat_outbox', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER chat_outbox_notify AFTER INSERT ON chat_message_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION chat_outbox_notify();

-- +goose Down
DROP TRIGGER chat_outbox_notify ON chat_message_outbox;
DROP FUNCTION chat_outbox_notify();
