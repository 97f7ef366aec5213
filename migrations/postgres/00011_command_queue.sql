-- The chat.send command queue in the database (modules/messaging), used when
-- relay.driver is not amqp: watermill-sql's PostgreSQL messages table for
-- topic chat_command_queue and its offsets (consumer group "chat_send").

-- +goose Up
CREATE TABLE chat_command_queue (
    "offset"       BIGSERIAL,
    uuid           VARCHAR(36) NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload        BYTEA,
    metadata       JSON,
    transaction_id XID8 NOT NULL,
    PRIMARY KEY (transaction_id, "offset")
);

CREATE TABLE chat_command_queue_offsets (
    consumer_group                VARCHAR(255) NOT NULL PRIMARY KEY,
    offset_acked                  BIGINT,
    last_processed_transaction_id XID8 NOT NULL
);

-- +goose Down
DROP TABLE chat_command_queue_offsets;
DROP TABLE chat_command_queue;
