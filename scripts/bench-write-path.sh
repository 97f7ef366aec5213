#!/usr/bin/env bash
# The write path against its peer, in one run on this machine:
#   1. pgbench on the same PostgreSQL, CONC clients, one transaction per
#      message with the three statements a send needs (seq counter update,
#      message insert, outbox insert), on chat-service's own schema;
#   2. chat-service REST sends at the same concurrency, PostgreSQL + RabbitMQ,
#      one instance (cmd/restload, a process of its own);
#   3. the same against the embedded default (SQLite file, in-process relay).
# Each line reports throughput and CPU per message: the service's own and
# the whole machine's (load tool, service, database, broker), from /proc.
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) and RabbitMQ at
# 127.0.0.1:5672 (guest/guest), and pgbench (postgresql-contrib).
# Usage: scripts/bench-write-path.sh [seconds per run, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
CONC=${CONC:-16}
export PGHOST=127.0.0.1 PGUSER=postgres
work=$(mktemp -d)
suffix=$$
pgdb=bench_pgbench_$suffix
svcdb=bench_rest_$suffix
secret=bench-secret-0123456789abcdef0123456789
cleanup() {
	for p in $(cat "$work/pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
	sleep 1
	dropdb --if-exists "$pgdb" 2>/dev/null || true
	dropdb --if-exists "$svcdb" 2>/dev/null || true
	if command -v rabbitmqctl >/dev/null; then
		for i in $(seq 0 63); do rabbitmqctl -q delete_queue "chat.send.bench$suffix.$i" >/dev/null 2>&1 || true; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT

command -v pgbench >/dev/null || { echo "pgbench missing: apt-get install postgresql-contrib" >&2; exit 1; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; } # jiffies, 100 per second

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"

# 1. pgbench.
createdb "$pgdb"
for f in migrations/postgres/*.sql; do
	sed -n '/+goose Up/,/+goose Down/p' "$f" | grep -v '+goose' | psql -q -v ON_ERROR_STOP=1 -d "$pgdb" >/dev/null
done
psql -q -d "$pgdb" -c "INSERT INTO chat_sessions (id, type, last_seq, created_at)
	SELECT 's' || i, 'group', 0, now() FROM generate_series(0, $CONC) i;
	INSERT INTO chat_session_members (session_id, user_id, joined_at)
	SELECT 's' || i, 'u' || i, now() FROM generate_series(0, $CONC) i;"
cat >"$work/send.sql" <<'SQL'
BEGIN;
UPDATE chat_sessions SET last_seq = last_seq + 1, last_message_at = now() WHERE id = 's' || :client_id RETURNING last_seq \gset
INSERT INTO chat_messages (id, session_id, seq, sender_id, content, created_at) VALUES (gen_random_uuid()::text, 's' || :client_id, :last_seq, 'u' || :client_id, 'a message of about the size people write, forty-odd bytes', now());
INSERT INTO chat_message_outbox (uuid, payload, metadata, transaction_id) VALUES (gen_random_uuid()::text, convert_to(repeat('x', 500), 'UTF8'), '{"event_type":"message"}', pg_current_xact_id());
END;
SQL
run_pgbench() { # label
	local b0 b1 tx tps lat
	b0=$(busy)
	pgbench -n -c "$CONC" -j 2 -T "$DURATION" -f "$work/send.sql" "$pgdb" >"$work/pgbench.out" 2>&1
	b1=$(busy)
	tx=$(awk '/number of transactions actually processed/{print $NF}' "$work/pgbench.out" | cut -d/ -f1)
	tps=$(awk '/^tps/{print $3; exit}' "$work/pgbench.out")
	lat=$(awk '/latency average/{print $4}' "$work/pgbench.out")
	echo "$1: $CONC clients, $tps tx/s, latency average $lat ms, machine CPU $(( (b1 - b0) * 10000000 / tx / 1000 )) µs/tx"
}
# The peer: the three statements alone, one message per transaction.
psql -q -d "$pgdb" -c "DROP TRIGGER chat_outbox_notify ON chat_message_outbox"
run_pgbench "pgbench (3 statements)"
# And with the schema's outbox trigger (pg_notify at commit), which every
# service transaction also fires, once per batch.
psql -q -d "$pgdb" -c "CREATE TRIGGER chat_outbox_notify AFTER INSERT ON chat_message_outbox FOR EACH STATEMENT EXECUTE FUNCTION chat_outbox_notify()"
run_pgbench "pgbench (3 statements + outbox notify trigger)"

# 2 and 3. The service, built once.
go build -o "$work/chat" ./cmd/chat
go build -o "$work/restload" ./cmd/restload
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # label, then -set flags
	local label=$1; shift
	local p; p=$(port)
	"$work/chat" -set server.addr=127.0.0.1:$p -set auth.dev.enabled=false -set auth.jwt.hmac_secret=$secret \
		-set limits.rate_per_second=1000000 -set limits.burst=1000000 -set log.level=warn "$@" >"$work/$label.log" 2>&1 &
	echo $! >>"$work/pids"
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$p/readyz" >/dev/null 2>&1 && { echo "$p $!"; return; }
		sleep 0.2
	done
	cat "$work/$label.log" >&2; exit 1
}
createdb "$svcdb"
read -r p pid < <(start postgres -set storage.driver=postgres \
	-set "storage.dsn=postgres://postgres@127.0.0.1:5432/$svcdb?sslmode=disable" \
	-set relay.driver=amqp -set commands.queue=chat.send.bench$suffix)
"$work/restload" -url "http://127.0.0.1:$p" -pid "$pid" -secret "$secret" -senders "$CONC" -duration "${DURATION}s" -label "chat-service PostgreSQL+RabbitMQ"
kill "$pid"; sleep 1

read -r p pid < <(start sqlite -set "storage.dsn=file:$work/chat.db")
"$work/restload" -url "http://127.0.0.1:$p" -pid "$pid" -secret "$secret" -senders "$CONC" -duration "${DURATION}s" -label "chat-service embedded default (SQLite)"
kill "$pid"
