#!/usr/bin/env bash
# The production topology on one machine: nginx terminating TLS in front of
# two chat-service instances that share PostgreSQL and RabbitMQ.
#
#   deploy/local-cluster.sh start     build, start everything, print the URL last
#   deploy/local-cluster.sh stop      stop what start started, drop its database
#   deploy/local-cluster.sh status    what runs
#   deploy/local-cluster.sh token ID  print a client JWT for user ID (1 h)
#   deploy/local-cluster.sh kill N    SIGKILL instance N (1 or 2): a crash
#   deploy/local-cluster.sh restart N start instance N again (after kill)
#   deploy/local-cluster.sh dir       print the state directory (certificate, keys, logs)
#
# Auth is as in production: development tokens are off. start makes an RSA
# key pair in the state directory; the instances trust its public key (kid
# "local", issuer "local-cluster", audience "chat-service") and `token` signs
# with its private key, standing in for an identity provider.
#
# CHAT_* variables in the caller's environment reach every instance and win
# over the cluster's chat.yaml (for example CHAT_LIMITS__RATE_PER_SECOND=5).
# PostgreSQL and RabbitMQ are started only when nothing answers on their
# ports (and stopped again by stop only then); nginx is installed from
# Debian's packages when missing.
#
# Settings (environment): CLUSTER_DIR (state, default .local-cluster in the
# repository), CLUSTER_PORTS (instance ports, default "18081 18082"),
# CLUSTER_HTTPS_PORT (8443), CLUSTER_PG (postgres://postgres@127.0.0.1:5432),
# CLUSTER_AMQP (amqp://guest:guest@127.0.0.1:5672/).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CLUSTER_DIR:-$root/.local-cluster}
read -r -a ports <<<"${CLUSTER_PORTS:-18081 18082}"
https_port=${CLUSTER_HTTPS_PORT:-8443}
pg=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
amqp=${CLUSTER_AMQP:-amqp://guest:guest@127.0.0.1:5672/}
db=chat_local_cluster
prefix=chat.local_cluster # RabbitMQ exchange and queue names of this cluster
url="https://127.0.0.1:$https_port"

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # what, tenths of a second, command...
	local what=$1 n=$2; shift 2
	for _ in $(seq "$n"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	die "$what did not come up in $((n / 10)) s"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

hostport() { # URL -> "host port"
	local hp=${1#*://}
	hp=${hp#*@}
	hp=${hp%%/*}
	echo "${hp%:*} ${hp##*:}"
}

psql_admin() { psql "$pg/postgres?sslmode=disable" -v ON_ERROR_STOP=1 -qAt "$@"; }

ensure_postgres() {
	read -r host port < <(hostport "$pg")
	if tcp_open "$host" "$port"; then return; fi
	log "PostgreSQL is not answering on $host:$port: starting it"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
	touch "$dir/started-postgres"
	wait_for PostgreSQL 600 psql_admin -c 'select 1'
}

ensure_rabbitmq() {
	read -r host port < <(hostport "$amqp")
	if tcp_open "$host" "$port"; then return; fi
	log "RabbitMQ is not answering on $host:$port: starting it"
	rabbitmq-server -detached
	touch "$dir/started-rabbitmq"
	wait_for RabbitMQ 1200 tcp_open "$host" "$port"
}

ensure_nginx() {
	if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then return; fi
	log "installing nginx from Debian's packages"
	# Keep the package from starting the system's own nginx on port 80.
	local policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		policy=/usr/sbin/policy-rc.d
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
	if [ -n "$policy" ]; then rm -f "$policy"; fi
}

nginx_bin() { command -v nginx || echo /usr/sbin/nginx; }

make_keys() {
	mkdir -p "$dir/tls" "$dir/jwt"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
		-subj "/CN=chat local cluster" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/jwt/private.pem" 2>/dev/null
	openssl pkey -in "$dir/jwt/private.pem" -pubout -out "$dir/jwt/public.pem"
	chmod 600 "$dir/tls/key.pem" "$dir/jwt/private.pem"
}

write_config() {
	cat >"$dir/chat.yaml" <<EOF
# Written by deploy/local-cluster.sh; CHAT_* variables override it.
server:
  trusted_proxies: ["127.0.0.1/32", "::1/128"]   # nginx on this machine
  shutdown_timeout: 10s
auth:
  jwt:
    public_keys:
      local: $dir/jwt/public.pem
    issuer: local-cluster
    audience: chat-service
  dev:
    enabled: false
storage:
  driver: postgres
  dsn: "$pg/$db?sslmode=disable"
relay:
  driver: amqp
  amqp:
    url: "$amqp"
    exchange: $prefix
commands:
  queue: $prefix.send
log:
  format: json
EOF
}

start_instance() { # N
	local n=$1 port=${ports[$(($1 - 1))]}
	if tcp_open 127.0.0.1 "$port"; then die "port $port (instance $n) is taken; set CLUSTER_PORTS"; fi
	setsid "$dir/chat" -config "$dir/chat.yaml" -set "server.addr=127.0.0.1:$port" \
		>>"$dir/instance-$n.log" 2>&1 </dev/null &
	echo $! >"$dir/instance-$n.pid"
}

wait_ready() { # N
	local n=$1 port=${ports[$(($1 - 1))]}
	for _ in $(seq 300); do
		if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
		if ! alive "$dir/instance-$n.pid"; then
			tail -20 "$dir/instance-$n.log" >&2
			die "instance $n exited"
		fi
		sleep 0.1
	done
	tail -20 "$dir/instance-$n.log" >&2
	die "instance $n is not ready after 30 s"
}

write_nginx() {
	mkdir -p "$dir/nginx/tmp"
	local conf=$dir/nginx/chat.conf
	# The shipped file, with this machine's certificate, logs and ports.
	sed -e "s#/etc/nginx/tls/chat.crt#$dir/tls/cert.pem#" \
		-e "s#/etc/nginx/tls/chat.key#$dir/tls/key.pem#" \
		-e "s#/var/log/nginx/#$dir/nginx/#" \
		-e "s#127.0.0.1:18081#127.0.0.1:${ports[0]}#" \
		-e "s#127.0.0.1:18082#127.0.0.1:${ports[1]}#" \
		-e "s#listen 8443 #listen $https_port #" \
		-e "s#listen \[::\]:8443 #listen [::]:$https_port #" \
		"$root/deploy/nginx/chat.conf" >"$conf"
	cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    include $conf;
}
EOF
}

cmd_start() {
	if alive "$dir/nginx/nginx.pid" || alive "$dir/instance-1.pid" || alive "$dir/instance-2.pid"; then
		die "already running (deploy/local-cluster.sh stop first)"
	fi
	for cmd in openssl curl psql go; do
		command -v "$cmd" >/dev/null 2>&1 || die "needs $cmd"
	done
	if tcp_open 127.0.0.1 "$https_port"; then die "port $https_port is taken; set CLUSTER_HTTPS_PORT"; fi
	rm -rf "$dir"
	mkdir -p "$dir"
	ensure_postgres
	ensure_rabbitmq
	ensure_nginx

	log "building cmd/chat"
	(cd "$root" && CGO_ENABLED=0 go build -o "$dir/chat" ./cmd/chat)
	make_keys
	write_config

	psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
	# The first instance runs the migrations; the second starts once it is ready.
	start_instance 1
	wait_ready 1
	start_instance 2
	wait_ready 2

	write_nginx
	"$(nginx_bin)" -q -t -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
	"$(nginx_bin)" -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
	wait_for nginx 100 curl -fsS --cacert "$dir/tls/cert.pem" "$url/readyz"

	log "instances: http://127.0.0.1:${ports[0]} http://127.0.0.1:${ports[1]} (logs in $dir)"
	log "TLS certificate: $dir/tls/cert.pem; tokens: deploy/local-cluster.sh token USER"
	echo "$url"
}

stop_pid() { # pidfile, seconds before SIGKILL
	local f=$1 secs=$2
	alive "$f" || { rm -f "$f"; return 0; }
	local pid
	pid=$(cat "$f")
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq $((secs * 10))); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$f"
}

cmd_stop() {
	[ -d "$dir" ] || { log "not running"; return 0; }
	if alive "$dir/nginx/nginx.pid"; then
		"$(nginx_bin)" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -s stop 2>/dev/null || true
		stop_pid "$dir/nginx/nginx.pid" 5
	fi
	stop_pid "$dir/instance-1.pid" 15
	stop_pid "$dir/instance-2.pid" 15
	psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || log "could not drop database $db"
	if command -v rabbitmqctl >/dev/null 2>&1; then
		# Best effort: this cluster's durable queues and its exchange.
		rabbitmqctl -q list_queues name 2>/dev/null | grep "^$prefix" | while read -r q; do
			rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
		done
		rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$prefix\">>), false, <<\"local-cluster\">>)." >/dev/null 2>&1 || true
	fi
	if [ -f "$dir/started-rabbitmq" ]; then rabbitmqctl -q stop >/dev/null 2>&1 || true; fi
	if [ -f "$dir/started-postgres" ]; then
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main stop || true
	fi
	rm -rf "$dir"
	log "stopped"
}

cmd_status() {
	local up=0
	for n in 1 2; do
		if alive "$dir/instance-$n.pid"; then
			echo "instance $n: running, pid $(cat "$dir/instance-$n.pid"), http://127.0.0.1:${ports[$((n - 1))]}"
			up=1
		else
			echo "instance $n: stopped"
		fi
	done
	if alive "$dir/nginx/nginx.pid"; then echo "nginx: running, $url"; up=1; else echo "nginx: stopped"; fi
	[ "$up" = 1 ]
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

cmd_token() { # USER [SECONDS]
	local user=${1:?usage: token USER [SECONDS]} ttl=${2:-3600}
	[ -f "$dir/jwt/private.pem" ] || die "not started"
	[[ $user =~ ^[A-Za-z0-9._@:-]{1,128}$ ]] || die "bad user id"
	local now header payload sig
	now=$(date +%s)
	header=$(printf '{"alg":"RS256","typ":"JWT","kid":"local"}' | b64url)
	payload=$(printf '{"sub":"%s","iss":"local-cluster","aud":"chat-service","iat":%d,"exp":%d}' \
		"$user" "$now" $((now + ttl)) | b64url)
	sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$dir/jwt/private.pem" -binary | b64url)
	echo "$header.$payload.$sig"
}

cmd_kill() { # N
	local n=${1:?usage: kill N}
	alive "$dir/instance-$n.pid" || die "instance $n is not running"
	kill -KILL "$(cat "$dir/instance-$n.pid")"
	rm -f "$dir/instance-$n.pid"
	log "instance $n killed"
}

cmd_restart() { # N
	local n=${1:?usage: restart N}
	if alive "$dir/instance-$n.pid"; then stop_pid "$dir/instance-$n.pid" 15; fi
	start_instance "$n"
	wait_ready "$n"
	log "instance $n ready"
}

case "${1:-}" in
start) cmd_start ;;
dir) echo "$dir" ;;
stop) cmd_stop ;;
status) cmd_status ;;
token) shift; cmd_token "$@" ;;
kill) shift; cmd_kill "$@" ;;
restart) shift; cmd_restart "$@" ;;
*)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
