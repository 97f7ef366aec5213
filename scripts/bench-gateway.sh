#!/usr/bin/env bash
# The gateway's figures in BENCHMARKS.md ("Gateway efficiency"), side by side
# in one run on this machine: RabbitMQ Web-STOMP (the peer), chat-service on
# PostgreSQL + RabbitMQ (one instance) and chat-service on the embedded
# default (SQLite, in-process relay and command queue), with chatbench:
#   f. fanout, 1 session x FAN_CONNS subscribers, one sender as fast as a
#      window of FAN_WINDOW messages in flight lets it: deliveries/s and
#      server CPU per delivery;
#   g. fanout, 1 session x 100 subscribers at 100 msg/s: latency;
#   h. idle: IDLE_CONNS connections (a list: "5000 20000"), each subscribed
#      once: server RSS per connection (the peer with PEER_BIG=1);
#   i. groups: GROUP_SESSIONS sessions x 10 members, 1 msg/s per session (the peer
#      with PEER_BIG=1).
# Results go to stdout as they come, then as Markdown tables.
#
# The service gets limits that let the load through (per-user send rate,
# connect rate, connections per user: the load is few users on many
# connections); each service run gets a fresh database, command queue and
# relay exchange, removed afterwards (and on exit) with the processes this
# script started (scripts/bench-lib.sh).
#
# RabbitMQ's Web-STOMP takes as many connections as its soft open-files
# limit allows (1024 unless rabbitmq-env.conf raised it before the broker
# started; scripts/rabbitmq-web-stomp.sh): FAN_CONNS defaults to 800, and the
# peer runs of h and i, which need thousands, only with PEER_BIG=1.
#
# Usage: scripts/bench-gateway.sh            about 8 minutes
# Environment (defaults): FAN_CONNS (800), FAN_WINDOW (2), IDLE_CONNS (5000),
# GROUP_SESSIONS (1000), DURATION (15s), WARMUP (3s), DRAIN (2s), STEPS ("f g h i"),
# TARGETS ("rabbitmq pg embedded"), PEER_BIG (0), TIME_LIMIT (1500 s), SVC_EXTRA ("").
set -euo pipefail
cd "$(dirname "$0")/.."

FAN_CONNS=${FAN_CONNS:-800}
FAN_WINDOW=${FAN_WINDOW:-2}
IDLE_CONNS=${IDLE_CONNS:-5000}
GROUP_SESSIONS=${GROUP_SESSIONS:-1000}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
DRAIN=${DRAIN:-2s}
STEPS=${STEPS:-f g h i}
TARGETS=${TARGETS:-rabbitmq pg embedded}
PEER_BIG=${PEER_BIG:-0}
TIME_LIMIT=${TIME_LIMIT:-1500}
NOFILE=${NOFILE:-65536}
WEB_STOMP=${WEB_STOMP:-ws://127.0.0.1:15674/ws}
SWEEP_DURATION=0s FANOUT_DURATION=0s # bench()'s bound: DURATION is every part's window

BENCH_NAME=bench-gateway
SVC_SETS=(-set limits.rate_per_second=100000 -set limits.burst=100000 -set limits.connect_rate=100000
	-set limits.max_preauth_per_ip=100000 -set limits.max_connections_per_user=100000)
# SVC_EXTRA: more chat.yaml settings for the service runs, as key=value words
# (e.g. SVC_EXTRA="outbox.batch_size=500").
for kv in ${SVC_EXTRA:-}; do SVC_SETS+=(-set "$kv"); done
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh # the working directory is the repository's root

for c in go git curl python3 psql createdb dropdb; do
	command -v "$c" >/dev/null || die "$c not found"
done
(exec 3<>/dev/tcp/127.0.0.1/15674) 2>/dev/null || die "RabbitMQ Web-STOMP is not listening on 127.0.0.1:15674: run scripts/rabbitmq-web-stomp.sh (as root)"
peer_pid=$(pgrep -f 'beam.smp.*-s rabbit' | head -1 || true)
[ -n "$peer_pid" ] || peer_pid=$(pgrep -o beam.smp || true)
peer=(-peer rabbitmq -peer-url "$WEB_STOMP" ${peer_pid:+-peer-pid "$peer_pid"})

echo "== gateway benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
load_start=$(cut -d' ' -f1 /proc/loadavg)
rev=$(git describe --always --dirty 2>/dev/null || echo "working tree")
log "building chatbench and chat-service ($rev)"
bounded 600 go build -o "$work/chatbench" ./cmd/chatbench
bounded 600 go build -o "$work/chat" ./cmd/chat

target() { [[ " $TARGETS " == *" $1 "* ]]; }

# stages NAME: the instance's chat_pipeline_stage_seconds after a run (its
# whole life: warm-up, window and drain), for the tables.
stages() {
	curl -fs -m 10 "$urls/metrics" | grep '^chat_pipeline_stage_seconds' >"$work/res/$1.stages" || rm -f "$work/res/$1.stages"
}

# each NAME ARGS...: the shape on every target, the service's runs on
# instances of their own.
each() {
	local name=$1
	shift
	if target rabbitmq; then bench "$name-rabbitmq" "${peer[@]}" "$@" || true; fi
	if target pg; then
		svc_begin "$name-pg" "$work/chat" 1
		bench "$name-pg" -url "$urls" -server-pid "$pids" "$@" || true
		stages "$name-pg"
		svc_end
	fi
	if target embedded; then
		emb_begin "$name-embedded" "$work/chat"
		bench "$name-embedded" -url "$urls" -server-pid "$pids" "$@" || true
		stages "$name-embedded"
		emb_end
	fi
}

if want f && in_time f; then
	each f fanout -conns "$FAN_CONNS" -users 100 -window "$FAN_WINDOW" -duration "$DURATION"
fi
if want g && in_time g; then
	each g fanout -conns 100 -users 100 -rate 100 -duration "$DURATION"
fi
if want h; then
	for n in $IDLE_CONNS; do
		in_time "h$n" || continue
		if target rabbitmq && [ "$PEER_BIG" = 1 ]; then bench_plain "h$n-rabbitmq" 900 "${peer[@]}" idle -conns "$n" || true; fi
		if target pg; then
			svc_begin "h$n-pg" "$work/chat" 1
			bench_plain "h$n-pg" 900 -url "$urls" -server-pid "$pids" idle -conns "$n" || true
			svc_end
		fi
		if target embedded; then
			emb_begin "h$n-embedded" "$work/chat"
			bench_plain "h$n-embedded" 900 -url "$urls" -server-pid "$pids" idle -conns "$n" || true
			emb_end
		fi
	done
fi
if want i && in_time i; then
	grp=(groups -sessions "$GROUP_SESSIONS" -members 10 -rate 1 -duration "$DURATION")
	if target rabbitmq && [ "$PEER_BIG" = 1 ]; then BENCH_LIMIT=900 bench i-rabbitmq "${peer[@]}" "${grp[@]}" || true; fi
	if target pg; then
		svc_begin i-pg "$work/chat" 1
		BENCH_LIMIT=900 bench i-pg -url "$urls" -server-pid "$pids" "${grp[@]}" || true
		stages i-pg
		svc_end
	fi
	if target embedded; then
		emb_begin i-embedded "$work/chat"
		BENCH_LIMIT=900 bench i-embedded -url "$urls" -server-pid "$pids" "${grp[@]}" || true
		stages i-embedded
		emb_end
	fi
fi

echo
python3 - "$work/res" <<PY
import json, os, sys
res = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(res, name + ".json")))
    except OSError:
        return None
def f(v, d=1):
    return "–" if v is None else f"{v:,.{d}f}"
cols = [("rabbitmq", "RabbitMQ Web-STOMP"), ("pg", "chat-service, PostgreSQL + RabbitMQ"), ("embedded", "chat-service, embedded default")]

print("## Gateway: chat-service against RabbitMQ Web-STOMP")
print()
print("$(nproc) cores; load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end; $(date -u +%F); chat-service $rev.")
print("Produced by \`scripts/bench-gateway.sh\`.")

def table(title, prefix, rows):
    rs = [(key, label, load(prefix + "-" + key)) for key, label in cols]
    if not any(r for _, _, r in rs):
        return
    print()
    print(title)
    print()
    print("| | " + " | ".join(label for _, label, _ in rs) + " | PostgreSQL + RabbitMQ / Web-STOMP |")
    print("| --- | " + " | ".join("---:" for _ in rs) + " | ---: |")
    for label, get, d in rows:
        vals = [None if r is None else get(r) for _, _, r in rs]
        q = "–"
        if vals[0] and vals[1] is not None:
            q = f"{vals[1] / vals[0]:.2f}×"
        print(f"| {label} | " + " | ".join(f(v, d) for v in vals) + f" | {q} |")

lat = lambda k: (lambda r: r.get(k) if r.get("delivered") else None)
cpu = lambda k: (lambda r: r.get(k) if r.get("server_measured") else None)
table("f. Fan-out, 1 session × $FAN_CONNS subscribers, one sender as fast as a window of $FAN_WINDOW messages in flight lets it, $DURATION:", "f", [
    ("deliveries/s", lambda r: r.get("deliveries_per_s", 0), 0),
    ("messages/s", lambda r: r.get("send_rate_per_s", 0), 0),
    ("send→receive p50 (ms)", lat("latency_p50_ms"), 2),
    ("send→receive p99 (ms)", lat("latency_p99_ms"), 2),
    ("missing", lambda r: r.get("missing", 0), 0),
    ("server CPU (cores)", cpu("server_cpu_cores"), 2),
    ("server CPU per delivery (µs)", cpu("server_cpu_us_per_delivery"), 1),
])
table("g. Fan-out, 1 session × 100 subscribers, 100 msg/s, $DURATION:", "g", [
    ("send→receive p50 (ms)", lat("latency_p50_ms"), 2),
    ("send→receive p99 (ms)", lat("latency_p99_ms"), 2),
    ("send→receive max (ms)", lat("latency_max_ms"), 2),
    ("delivered", lambda r: r.get("delivered", 0), 0),
    ("missing", lambda r: r.get("missing", 0), 0),
    ("server CPU per delivery (µs)", cpu("server_cpu_us_per_delivery"), 1),
])
for n in "$IDLE_CONNS".split():
    table(f"h. Idle: {int(n):,} connections, each subscribed once:", f"h{n}", [
        ("server RSS per connection (KiB)", lambda r: r.get("server_rss_per_conn_bytes", 0) / 1024 if r.get("server_rss_per_conn_bytes") else None, 1),
        ("server RSS (MiB)", lambda r: r.get("server_rss_bytes", 0) / 1048576, 1),
        ("connection errors", lambda r: r.get("connection_errors", 0), 0),
    ])
table("i. Groups: $GROUP_SESSIONS sessions × 10 members, 1 msg/s per session, $DURATION:", "i", [
    ("send→receive p50 (ms)", lat("latency_p50_ms"), 2),
    ("send→receive p99 (ms)", lat("latency_p99_ms"), 2),
    ("delivered", lambda r: r.get("delivered", 0), 0),
    ("missing", lambda r: r.get("missing", 0), 0),
    ("server CPU per delivery (µs)", cpu("server_cpu_us_per_delivery"), 1),
])

import re, collections
def stage_table(name):
    path = os.path.join(res, name + ".stages")
    if not os.path.exists(path):
        return
    b = collections.defaultdict(list); cnt = {}; sm = {}
    for line in open(path):
        m = re.match(r'chat_pipeline_stage_seconds_(bucket|count|sum)\{(.*)\} (\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        st, v = labels.get("stage"), float(m.group(3))
        if m.group(1) == "bucket":
            b[st].append((float("inf") if labels["le"] == "+Inf" else float(labels["le"]), v))
        else:
            (cnt if m.group(1) == "count" else sm)[st] = v
    def q(st, p):  # linear within the bucket, as histogram_quantile does
        items = sorted(b[st]); total = items[-1][1]; lo, below = 0.0, 0.0
        for le, v in items:
            if v >= p * total:
                return lo if le == float("inf") else lo + (le - lo) * (p * total - below) / max(v - below, 1e-12)
            lo, below = le, v
    print()
    print(f"Where the time goes, {name} (chat_pipeline_stage_seconds over the instance's run):")
    print()
    print("| stage | observations | mean (ms) | p50 (ms) | p99 (ms) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for st in ["command_publish", "commit", "forward", "relay", "hub", "write"]:
        if cnt.get(st):
            print(f"| {st} | {cnt[st]:,.0f} | {sm[st] / cnt[st] * 1000:.2f} | {q(st, 0.5) * 1000:.2f} | {q(st, 0.99) * 1000:.2f} |")
for name in ["f-pg", "f-embedded", "g-pg", "g-embedded", "i-pg", "i-embedded"]:
    stage_table(name)
PY
if [ -s "$work/skipped" ]; then
	echo
	echo "Skipped (time limit): $(tr '\n' ' ' <"$work/skipped")"
fi
