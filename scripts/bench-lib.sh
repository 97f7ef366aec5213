#!/usr/bin/env bash
# Shared by the STOMP benchmark scripts (bench-stomp.sh, bench-gateway.sh),
# sourced after they set BENCH_NAME and their windows (WARMUP, DRAIN, and
# the durations bench() bounds a run by): a work directory, the clean-up of
# everything a run creates (processes, databases, queues, exchanges), the
# service's instances on PostgreSQL + RabbitMQ or on the embedded default,
# and bounded chatbench runs. SVC_SETS (an array) adds -set flags to every
# instance.

export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres
suffix=$$
# Signs the development tokens: without a shared secret each instance makes
# up its own, and a token from the first would not open a connection to the
# second.
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d)
mkdir -p "$work/res" "$work/run" # run: the services' working directory (no chat.yaml: each binary's embedded defaults)
start_time=$SECONDS

log() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

# ---- clean-up: processes, databases, queues and exchanges of this run ----

alive() { # pid: running (a zombie is not)
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $s != Z* ]]
}

stop_pids() { # pids this script started: SIGTERM, then SIGKILL after 15 s
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 150); do alive "$p" || break; sleep 0.1; done
		if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
		wait "$p" 2>/dev/null || true
	done
}

# amqp_delete "QUEUE..." "EXCHANGE...": the command queues QUEUE and
# QUEUE.0 .. QUEUE.63, the relay queues (chat.relay.*) bound to the
# exchanges, then the exchanges. One rabbitmqctl call (each costs seconds);
# delete_queue one by one when eval is refused.
amqp_delete() {
	command -v rabbitmqctl >/dev/null || { log "rabbitmqctl not found: queues $1 and exchanges $2 are left"; return 0; }
	local q x i qs=() xs=()
	for q in $1; do
		qs+=("<<\"$q\">>")
		for i in $(seq 0 63); do qs+=("<<\"$q.$i\">>"); done
	done
	for x in $2; do xs+=("<<\"$x\">>"); done
	local qlist xlist
	qlist=$(IFS=,; echo "${qs[*]}")
	xlist=$(IFS=,; echo "${xs[*]}")
	if timeout 60 rabbitmqctl -q eval "
		VH = <<\"/\">>,
		Xs = [$xlist],
		IsRelay = fun(N) -> binary:longest_common_prefix([N, <<\"chat.relay.\">>]) =:= 11 end,
		Relay = [element(4, element(4, B)) || X <- Xs, B <- rabbit_binding:list_for_source(rabbit_misc:r(VH, exchange, X)),
			element(3, element(4, B)) =:= queue, IsRelay(element(4, element(4, B)))],
		Del = fun(N) -> case rabbit_amqqueue:lookup(rabbit_misc:r(VH, queue, N)) of
			{ok, Q} -> _ = rabbit_amqqueue:delete(Q, false, false, <<\"chat-bench\">>), [N];
			_ -> [] end end,
		Gone = lists:append([Del(N) || N <- lists:usort(Relay ++ [$qlist])]),
		_ = [rabbit_exchange:delete(rabbit_misc:r(VH, exchange, X), false, <<\"chat-bench\">>) || X <- Xs],
		length(Gone)." >"$work/amqp-delete.out" 2>&1; then
		log "RabbitMQ: deleted $(tr -d '[:space:]' <"$work/amqp-delete.out") queues of $1, and exchanges $2"
		return 0
	fi
	log "rabbitmqctl eval failed ($(head -c 200 "$work/amqp-delete.out")); deleting the command queues one by one"
	local existing
	existing=$(timeout 60 rabbitmqctl -q list_queues name 2>/dev/null || true)
	for q in $1; do
		grep -xE "$(printf '%s' "$q" | sed 's/\./\\./g')(\.[0-9]+)?" <<<"$existing" | while read -r name; do
			timeout 30 rabbitmqctl -q delete_queue "$name" >/dev/null 2>&1 || true
		done
	done
	log "relay queues (chat.relay.*, expiring 5 minutes after their instance stops) and exchanges $2 are left"
}

# bounded SECONDS COMMAND...: COMMAND under timeout, in the background so
# that a signal to this script is handled at once (the clean-up stops it).
child=
bounded() {
	local limit=$1 rc=0
	shift
	timeout "$limit" "$@" &
	child=$!
	wait "$child" || rc=$?
	child=
	return "$rc"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null || true # timeout passes it on to its command
		wait "$child" 2>/dev/null || true
	fi
	if [ -s "$work/pids" ]; then
		# shellcheck disable=SC2046 # one pid per line
		stop_pids $(cat "$work/pids")
	fi
	if [ -s "$work/dbs" ]; then
		while read -r db; do dropdb --if-exists "$db" 2>/dev/null || true; done <"$work/dbs"
	fi
	if [ -s "$work/queues" ] || [ -s "$work/exchanges" ]; then
		amqp_delete "$(cat "$work/queues" 2>/dev/null)" "$(cat "$work/exchanges" 2>/dev/null)"
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the service's instances ----

declare -A unsafe_key # binary -> yes/no: does it take auth.dev.allow_unsafe?

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_instance BIN LOG -set ...: one cmd/chat with dev tokens; sets
# inst_url and inst_pid. Dev tokens on PostgreSQL/RabbitMQ may need
# auth.dev.allow_unsafe; a binary that does not know the key refuses it at
# start-up, and is started again without it.
start_instance() {
	local bin=$1 logf=$2
	shift 2
	local try extra port pid
	for try in 1 2; do
		extra=()
		if [ "${unsafe_key[$bin]:-yes}" = yes ]; then extra=(-set auth.dev.allow_unsafe=true); fi
		port=$(free_port)
		(
			hard=$(ulimit -Hn)
			if [ "$hard" != unlimited ] && [ "$hard" -lt "$NOFILE" ]; then ulimit -n "$hard"; else ulimit -n "$NOFILE"; fi
			cd "$work/run"
			exec "$bin" -set "server.addr=127.0.0.1:$port" -set auth.dev.enabled=true "${extra[@]}" \
				-set "auth.jwt.hmac_secret=$secret" -set log.level=warn "${SVC_SETS[@]}" "$@"
		) >"$logf" 2>&1 &
		pid=$!
		echo "$pid" >>"$work/pids"
		for _ in $(seq 300); do # 60 s
			if curl -fs -m 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
				inst_url=http://127.0.0.1:$port inst_pid=$pid
				return 0
			fi
			alive "$pid" || break
			sleep 0.2
		done
		if alive "$pid"; then
			stop_pids "$pid"
			cat "$logf" >&2
			die "$bin did not become ready on 127.0.0.1:$port within 60 s"
		fi
		wait "$pid" 2>/dev/null || true
		if [ "$try" = 1 ] && [ "${unsafe_key[$bin]:-yes}" = yes ] && grep -q 'auth.dev.allow_unsafe' "$logf"; then
			unsafe_key[$bin]=no
			log "$(basename "$bin") does not know auth.dev.allow_unsafe; starting it without"
			continue
		fi
		cat "$logf" >&2
		die "$bin exited at start-up"
	done
}

# svc_begin LABEL BIN N: a fresh database, command queue and relay exchange,
# and N instances of BIN on them; sets urls, pids, svc_pids.
svc_begin() {
	local label=$1 bin=$2 n=$3 i
	svc_db=bench_stomp_${suffix}_$label
	svc_queue=chat.send.bench_stomp.$suffix.$label
	svc_exchange=chat.bench_stomp.$suffix.$label
	echo "$svc_db" >>"$work/dbs"
	echo "$svc_queue" >>"$work/queues"
	echo "$svc_exchange" >>"$work/exchanges"
	createdb "$svc_db"
	svc_pids=()
	urls='' pids=''
	for i in $(seq "$n"); do
		start_instance "$bin" "$work/$label.$i.log" -set storage.driver=postgres \
			-set "storage.dsn=postgres://postgres@127.0.0.1:5432/$svc_db?sslmode=disable" \
			-set relay.driver=amqp -set "relay.amqp.exchange=$svc_exchange" -set "commands.queue=$svc_queue"
		svc_pids+=("$inst_pid")
		urls=${urls:+$urls,}$inst_url
		pids=${pids:+$pids,}$inst_pid
	done
	log "$label: $n instance(s) of $(basename "$bin") at $urls (pids $pids), database $svc_db, commands.queue $svc_queue"
}

# svc_end: stop the instances, drop the database, delete the queues and the
# exchange (and forget them for the final clean-up).
svc_end() {
	local p
	stop_pids "${svc_pids[@]}"
	for p in "${svc_pids[@]}"; do sed -i "/^$p\$/d" "$work/pids"; done
	dropdb --if-exists "$svc_db" || true
	amqp_delete "$svc_queue" "$svc_exchange"
	sed -i "/^$svc_db\$/d" "$work/dbs"
	grep -vxF "$svc_queue" "$work/queues" >"$work/queues.new" || true
	mv "$work/queues.new" "$work/queues"
	grep -vxF "$svc_exchange" "$work/exchanges" >"$work/exchanges.new" || true
	mv "$work/exchanges.new" "$work/exchanges"
}

# emb_begin LABEL BIN: one instance of BIN on the embedded default (SQLite
# in the run's directory, the in-process relay and command queue); sets
# urls, pids, svc_pids. emb_end stops it.
emb_begin() {
	local label=$1 bin=$2
	start_instance "$bin" "$work/$label.log" -set "storage.dsn=file:$work/run/$label/chat.db"
	svc_pids=("$inst_pid")
	urls=$inst_url pids=$inst_pid
	log "$label: $(basename "$bin") at $urls (pid $pids) on the embedded default"
}

emb_end() {
	local p
	stop_pids "${svc_pids[@]}"
	for p in "${svc_pids[@]}"; do sed -i "/^$p\$/d" "$work/pids"; done
}

# ---- runs ----

secs() { # a Go duration of whole seconds or minutes -> seconds
	case $1 in *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;; *) die "durations are like 20s or 2m, not $1" ;; esac
}

# bench NAME ARGS...: one chatbench run (bounded), its text on stdout, its
# JSON in res/NAME.json; false when it failed.
bench() {
	local name=$1
	shift
	# Setup, the quiet wait (30 s at most), warm-up, window and drain of
	# the longest window a part uses, and room for a loaded machine.
	local limit=${BENCH_LIMIT:-$(($(secs "$WARMUP") + $(secs "$DRAIN") + $(secs "$DURATION") + $(secs "$SWEEP_DURATION") + $(secs "$FANOUT_DURATION") + 150))}
	echo
	echo "--- $name"
	if ! bounded "$limit" "$work/chatbench" -warmup "$WARMUP" -drain "$DRAIN" -json-file "$work/res/$name.json" "$@"; then
		log "$name: chatbench failed"
		rm -f "$work/res/$name.json"
		return 1
	fi
}

# bench_plain NAME SECONDS ARGS...: bench for the shapes without a warm-up
# or drain (idle, churn), bounded by SECONDS.
bench_plain() {
	local name=$1 limit=$2
	shift 2
	echo
	echo "--- $name"
	if ! bounded "$limit" "$work/chatbench" -json-file "$work/res/$name.json" "$@"; then
		log "$name: chatbench failed"
		rm -f "$work/res/$name.json"
		return 1
	fi
}

want() { [[ " $STEPS " == *" $1 "* ]]; }
in_time() { # true while the time limit allows another part
	if [ $((SECONDS - start_time)) -ge "$TIME_LIMIT" ]; then
		log "time limit (${TIME_LIMIT}s) reached: skipping $1"
		echo "$1" >>"$work/skipped"
		return 1
	fi
}

