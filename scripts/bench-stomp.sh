#!/usr/bin/env bash
# STOMP sends against RabbitMQ Web-STOMP as the peer, in one run on this
# machine (chatbench, cmd/chatbench):
#   a. RabbitMQ Web-STOMP, pairs: SESSIONS direct sessions x 2 participants,
#      each sending RATE msg/s (the peer);
#   b. chat-service on PostgreSQL + RabbitMQ, one instance, the same shape:
#      delivered/missing, send->receive p50/p99, server CPU per send;
#   c. the same over two instances (two processes, one database, one broker),
#      each session's two participants on different instances;
#   d. a rate sweep for one and for two instances: pairs at each
#      per-participant rate of SWEEP_RATES for SWEEP_DURATION, up to the first
#      rate that misses; the highest offered rate where p99 <= P99_LIMIT_MS
#      and everything was delivered;
#   e. fanout, 1 session x FANOUT_CONNS subscribers at FANOUT_RATE msg/s:
#      RabbitMQ, then the service built from BEFORE_REV, then the service built
#      from the working tree (the before/after of a change).
# Results go to stdout as they come, then as Markdown tables.
#
# Every service run gets a fresh PostgreSQL database, its own command queue
# (commands.queue) and relay exchange (relay.amqp.exchange: the load stays out
# of other instances using the broker, and theirs out of this one); all are
# dropped or deleted when the run ends, and on exit whatever is left, with
# the processes this script started.
#
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust), RabbitMQ at
# 127.0.0.1:5672 (guest/guest) with Web-STOMP on 127.0.0.1:15674
# (scripts/rabbitmq-web-stomp.sh), rabbitmqctl (as root) for the clean-up,
# go, git, curl, python3.
#
# Usage: scripts/bench-stomp.sh            about 8-10 minutes
#        QUICK=1 scripts/bench-stomp.sh    short windows: a smoke run
# Environment (defaults): BEFORE_REV (a70bc2a), SESSIONS (200), RATE (5),
# DURATION (20s), SWEEP_RATES ("1 2 5 8 12"), SWEEP_DURATION (10s),
# P99_LIMIT_MS (50), FANOUT_CONNS (100), FANOUT_RATE (100), FANOUT_DURATION
# (20s), STEPS ("a b c d e": the parts to run), TIME_LIMIT (1200: seconds
# after which the parts not started are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	: "${DURATION:=3s}" "${SWEEP_DURATION:=2s}" "${SWEEP_RATES:=1 5}" "${FANOUT_DURATION:=3s}" "${WARMUP:=1s}"
fi
BEFORE_REV=${BEFORE_REV:-a70bc2a}
SESSIONS=${SESSIONS:-200}
RATE=${RATE:-5}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
DRAIN=${DRAIN:-2s}
SWEEP_RATES=${SWEEP_RATES:-1 2 5 8 12}
SWEEP_DURATION=${SWEEP_DURATION:-10s}
P99_LIMIT_MS=${P99_LIMIT_MS:-50}
FANOUT_CONNS=${FANOUT_CONNS:-100}
FANOUT_RATE=${FANOUT_RATE:-100}
FANOUT_DURATION=${FANOUT_DURATION:-20s}
STEPS=${STEPS:-a b c d e}
TIME_LIMIT=${TIME_LIMIT:-1200}
NOFILE=${NOFILE:-65536}
WEB_STOMP=${WEB_STOMP:-ws://127.0.0.1:15674/ws}

BENCH_NAME=bench-stomp
SVC_SETS=()
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh # the working directory is the repository's root


# ---- checks and builds ----

for c in go git curl python3 psql createdb dropdb; do
	command -v "$c" >/dev/null || die "$c not found"
done
pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || psql -qAtc 'SELECT 1' -d postgres >/dev/null || die "PostgreSQL is not reachable at 127.0.0.1:5432"
(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || die "RabbitMQ is not reachable at 127.0.0.1:5672"
(exec 3<>/dev/tcp/127.0.0.1/15674) 2>/dev/null || die "RabbitMQ Web-STOMP is not listening on 127.0.0.1:15674: run scripts/rabbitmq-web-stomp.sh (as root)"
command -v rabbitmqctl >/dev/null || log "warning: rabbitmqctl not found: the queues this run creates will be left"

echo "== STOMP benchmark: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
load_start=$(cut -d' ' -f1 /proc/loadavg)

after_rev=$(git describe --always --dirty 2>/dev/null || echo "working tree")
log "building chatbench and chat-service ($after_rev)"
bounded 600 go build -o "$work/chatbench" ./cmd/chatbench
bounded 600 go build -o "$work/chat-after" ./cmd/chat

# passes NAME: everything delivered and p99 within the limit.
passes() {
	python3 - "$work/res/$1.json" "$P99_LIMIT_MS" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except OSError:
    sys.exit(1)
ok = r.get("sent", 0) > 0 and r.get("missing", 0) == 0 and r.get("delivered", 0) >= r.get("expected", 0) and r.get("latency_p99_ms", 1e9) <= float(sys.argv[2])
sys.exit(0 if ok else 1)
PY
}

pairs=(pairs -sessions "$SESSIONS" -rate "$RATE" -duration "$DURATION")

if want a && in_time a; then
	bench a-rabbitmq-pairs -peer rabbitmq -peer-url "$WEB_STOMP" "${pairs[@]}" || true
fi
if want b && in_time b; then
	svc_begin b "$work/chat-after" 1
	bench b-service-pairs-1 -url "$urls" -server-pid "$pids" "${pairs[@]}" || true
	svc_end
fi
if want c && in_time c; then
	svc_begin c "$work/chat-after" 2
	bench c-service-pairs-2 -url "$urls" -server-pid "$pids" "${pairs[@]}" || true
	svc_end
fi
if want d; then
	for n in 1 2; do
		in_time "d$n" || continue
		svc_begin "d$n" "$work/chat-after" "$n"
		for r in $SWEEP_RATES; do
			if [ $((SECONDS - start_time)) -ge "$TIME_LIMIT" ]; then
				log "time limit reached: the sweep over $n instance(s) stops before $r msg/s"
				break
			fi
			name=d-sweep-$n-$r
			bench "$name" -url "$urls" -server-pid "$pids" pairs -sessions "$SESSIONS" -rate "$r" -duration "$SWEEP_DURATION" || break
			if passes "$name"; then
				echo "$r" >>"$work/res/d-pass-$n"
			else
				log "sweep, $n instance(s): $r msg/s per participant misses (p99 > ${P99_LIMIT_MS} ms or messages missing); stopping"
				break
			fi
		done
		svc_end
	done
fi
if want e && in_time e; then
	fan=(fanout -conns "$FANOUT_CONNS" -users "$FANOUT_CONNS" -rate "$FANOUT_RATE" -duration "$FANOUT_DURATION")
	before_rev=$(git rev-parse --short "$BEFORE_REV^{commit}") || die "BEFORE_REV $BEFORE_REV is not a commit"
	log "building chat-service at $before_rev (git archive)"
	mkdir -p "$work/before-src"
	git archive "$before_rev" | tar -x -C "$work/before-src"
	bounded 600 go build -C "$work/before-src" -o "$work/chat-before" ./cmd/chat
	rm -rf "$work/before-src"
	bench e-rabbitmq-fanout -peer rabbitmq -peer-url "$WEB_STOMP" "${fan[@]}" || true
	svc_begin e1 "$work/chat-before" 1
	bench e-before-fanout -url "$urls" -server-pid "$pids" "${fan[@]}" || true
	svc_end
	svc_begin e2 "$work/chat-after" 1
	bench e-after-fanout -url "$urls" -server-pid "$pids" "${fan[@]}" || true
	svc_end
fi

# ---- the tables ----

quick_note=''
if [ "$QUICK" = 1 ]; then quick_note=' (QUICK=1: short windows, a smoke run)'; fi

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
def lat(r, k):  # a latency, when something was delivered
    return "–" if r is None or not r.get("delivered") else f"{r.get(k, 0):,.2f}"
def cpu(r, k, d=1):  # a server CPU figure, when the server was measured
    return f(r.get(k, 0), d) if r.get("server_measured") else "–"
def instances(n):
    return f"{n} instance" + ("s" if n > 1 else "")

print("## STOMP sends: chat-service against RabbitMQ Web-STOMP")
print()
print("$(nproc) cores; load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end; $(date -u +%F); chat-service $after_rev.")
print("Produced by \`scripts/bench-stomp.sh\`$quick_note.")

rows = [
    ("a", "RabbitMQ Web-STOMP", load("a-rabbitmq-pairs")),
    ("b", "chat-service, PostgreSQL + RabbitMQ, 1 instance", load("b-service-pairs-1")),
    ("c", "chat-service, PostgreSQL + RabbitMQ, 2 instances", load("c-service-pairs-2")),
]
if any(r for _, _, r in rows):
    peer = rows[0][2]
    print()
    print("pairs: $SESSIONS direct sessions × 2 participants × $RATE msg/s each, $DURATION measured.")
    print()
    print("| | target | sends/s offered | sent | delivered / expected | missing | p50 (ms) | p99 (ms) | p99 / RabbitMQ | server CPU (cores) | server CPU per send (µs) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for step, what, r in rows:
        if r is None:
            print(f"| {step} | {what} | not run | | | | | | | | |")
            continue
        ratio = "–"
        if step != "a" and peer and peer.get("delivered") and r.get("delivered"):
            ratio = f"{r.get('latency_p99_ms', 0) / peer['latency_p99_ms']:,.1f}×"
        print(f"| {step} | {what} | {f(r.get('send_rate_per_s', 0), 0)} | {r.get('sent', 0):,} | {r.get('delivered', 0):,} / {r.get('expected', 0):,} | "
              f"{r.get('missing', 0):,} | {lat(r, 'latency_p50_ms')} | {lat(r, 'latency_p99_ms')} | {ratio} | {cpu(r, 'server_cpu_cores', 2)} | {cpu(r, 'server_cpu_us_per_send')} |")
        for i, inst in enumerate(r.get("instances") or []):
            print(f"| | instance {i + 1}: {inst.get('connections', 0)} connections | | | | | | | | {f(inst.get('cpu_cores', 0), 2)} | |")

sweep = {n: [(rate, load(f"d-sweep-{n}-{rate}")) for rate in "$SWEEP_RATES".split()] for n in (1, 2)}
if any(r for steps in sweep.values() for _, r in steps):
    print()
    print("Rate sweep: pairs, $SESSIONS sessions × 2 participants, $SWEEP_DURATION per step, up to the first step that misses (p99 > $P99_LIMIT_MS ms or a message missing).")
    print()
    print("| instances | msg/s per participant | sends/s offered | delivered / expected | missing | p50 (ms) | p99 (ms) | server CPU per send (µs) | |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    best = {}
    for n, steps in sweep.items():
        try:
            passed = [float(x) for x in open(os.path.join(res, f"d-pass-{n}")).read().split()]
        except OSError:
            passed = []
        best[n] = max(passed) if passed else None
        for rate, r in steps:
            if r is None:
                continue
            ok = "ok" if float(rate) in passed else "**misses**"
            print(f"| {n} | {rate} | {f(r.get('send_rate_per_s', 0), 0)} | {r.get('delivered', 0):,} / {r.get('expected', 0):,} | {r.get('missing', 0):,} | "
                  f"{lat(r, 'latency_p50_ms')} | {lat(r, 'latency_p99_ms')} | {cpu(r, 'server_cpu_us_per_send')} | {ok} |")
    print()
    for n, b in best.items():
        if not any(r for _, r in sweep[n]):
            continue
        if b is None:
            print(f"- {instances(n)}: no rate of the sweep passed.")
        else:
            print(f"- {instances(n)}: highest offered rate with p99 ≤ $P99_LIMIT_MS ms and all delivered: {b:g} msg/s per participant ({b * 2 * $SESSIONS:,.0f} sends/s).")

fr = [("RabbitMQ Web-STOMP", load("e-rabbitmq-fanout")), ("before ($BEFORE_REV)", load("e-before-fanout")), ("after ($after_rev)", load("e-after-fanout"))]
if any(r for _, r in fr):
    print()
    print("Fan-out: 1 session × $FANOUT_CONNS subscribers, $FANOUT_RATE msg/s in total, $FANOUT_DURATION measured; the service on PostgreSQL + RabbitMQ, one instance.")
    print()
    print("| | " + " | ".join(n for n, _ in fr) + " | after / before |")
    print("| --- | " + " | ".join("---:" for _ in fr) + " | ---: |")
    def row(label, key, d=2, latency=False):
        vals = [None if r is None or (latency and not r.get("delivered")) else r.get(key, 0) for _, r in fr]
        q = "–"
        if vals[1] and vals[2] is not None:
            q = f"{vals[2] / vals[1]:.2f}×"
        print(f"| {label} | " + " | ".join(f(v, d) for v in vals) + f" | {q} |")
    row("send→receive p50 (ms)", "latency_p50_ms", latency=True)
    row("send→receive p99 (ms)", "latency_p99_ms", latency=True)
    row("send→receive max (ms)", "latency_max_ms", latency=True)
    row("delivered", "delivered", 0)
    row("expected", "expected", 0)
    row("missing", "missing", 0)
    row("server CPU per delivery (µs)", "server_cpu_us_per_delivery")
PY
if [ -s "$work/skipped" ]; then
	echo
	echo "Skipped (time limit): $(tr '\n' ' ' <"$work/skipped")"
fi
