-- Wake-ups instead of polls: PostgreSQL notifies the forwarder from a
-- trigger on the outbox (postgres/00012). SQLite serves one instance, whose
-- store wakes its forwarder in process after every commit, so there is
-- nothing to create here; the file keeps the versions of both dialects in
-- step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
