#!/usr/bin/env bash
# Makes RabbitMQ's Web-STOMP plugin available on this machine for chatbench's
# peer mode (ws://127.0.0.1:15674/ws, login guest/guest), without restarting a
# running broker:
#
#   - rabbitmq.conf: Web-STOMP (15674) and the STOMP plugin it brings along
#     (61613) listen on loopback only, like the AMQP listener;
#   - rabbitmq-env.conf: the broker's soft open-files limit is raised with
#     `ulimit -n`, which 1,000+ connections need (the default soft limit is
#     1024). The broker reads this file when it starts: a running broker keeps
#     its limit until its next start, which this script does not cause;
#   - the plugin: enabled online in a running broker (`rabbitmq-plugins
#     enable` starts it in place, no restart), or with --offline when the
#     broker is not running (it starts with the broker).
#
# Idempotent; run as root (it writes the broker's configuration directory).
# Environment: RABBITMQ_CONF_DIR (default /etc/rabbitmq), WEB_STOMP_PORT
# (15674), STOMP_PORT (61613), RABBITMQ_NOFILE (65536, capped at the hard
# limit the broker starts with).
set -euo pipefail

conf_dir=${RABBITMQ_CONF_DIR:-/etc/rabbitmq}
conf=$conf_dir/rabbitmq.conf
env_conf=$conf_dir/rabbitmq-env.conf
ws_port=${WEB_STOMP_PORT:-15674}
stomp_port=${STOMP_PORT:-61613}
nofile=${RABBITMQ_NOFILE:-65536}
marker="# chat-service chatbench"

log() { printf '== %s\n' "$*"; }
die() { printf 'rabbitmq-web-stomp: %s\n' "$*" >&2; exit 1; }

command -v rabbitmq-plugins >/dev/null || die "rabbitmq-plugins not found: is RabbitMQ installed?"
[[ $nofile =~ ^[0-9]+$ ]] || die "RABBITMQ_NOFILE must be a number, not '$nofile'"
[ -d "$conf_dir" ] || die "$conf_dir does not exist (set RABBITMQ_CONF_DIR)"

# 1. Configuration read at the next broker start (never rewrites a setting
#    someone else made: a file that already configures the listener is left
#    alone).
touch "$conf" "$env_conf"
if ! grep -qE '^[[:space:]]*web_stomp\.tcp\.' "$conf"; then
	printf '\n%s: Web-STOMP on loopback only\nweb_stomp.tcp.listener = 127.0.0.1:%s\n' "$marker" "$ws_port" >>"$conf"
	log "$conf: web_stomp.tcp.listener = 127.0.0.1:$ws_port"
fi
if ! grep -qE '^[[:space:]]*stomp\.listeners\.' "$conf"; then
	printf '%s: the STOMP plugin (a Web-STOMP dependency) on loopback only\nstomp.listeners.tcp.1 = 127.0.0.1:%s\n' "$marker" "$stomp_port" >>"$conf"
	log "$conf: stomp.listeners.tcp.1 = 127.0.0.1:$stomp_port"
fi
if ! grep -qE '^[[:space:]]*ulimit[[:space:]]+-n' "$env_conf"; then
	# Sourced by sh as the rabbitmq user: it may raise the soft limit up to
	# the hard one, not beyond, so the value is capped rather than failing.
	cat >>"$env_conf" <<CONF

$marker: open files for 1,000+ connections (read when the broker starts)
_chat_nofile=\$(ulimit -Hn); if [ "\$_chat_nofile" = unlimited ] || [ "\$_chat_nofile" -gt $nofile ]; then _chat_nofile=$nofile; fi
ulimit -n "\$_chat_nofile" 2>/dev/null || true; unset _chat_nofile
CONF
	log "$env_conf: ulimit -n $nofile (capped at the hard limit) from the next broker start"
fi

# 2. The plugin.
running=false
if rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
	running=true
fi
if ! $running; then
	rabbitmq-plugins enable --offline rabbitmq_web_stomp
	log "the broker is not running: Web-STOMP starts with it, on 127.0.0.1:$ws_port"
	exit 0
fi
if rabbitmq-plugins -q is_enabled rabbitmq_web_stomp >/dev/null 2>&1; then
	log "Web-STOMP is already running"
else
	# The running broker read rabbitmq.conf when it started, before the lines
	# above existed: give the two plugins the same loopback listeners now
	# (persistent, so that loading the applications keeps them), then start
	# them in place.
	rabbitmqctl -q eval "
		ok = application:set_env(rabbitmq_web_stomp, tcp_config, [{ip, \"127.0.0.1\"}, {port, $ws_port}], [{persistent, true}]),
		ok = application:set_env(rabbitmq_stomp, tcp_listeners, [{\"127.0.0.1\", $stomp_port}], [{persistent, true}])." >/dev/null
	rabbitmq-plugins enable rabbitmq_web_stomp
fi

# 3. Check: the listener answers, and the broker's file limit.
for _ in $(seq 30); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$ws_port") 2>/dev/null; then
		break
	fi
	sleep 1
done
(exec 3<>"/dev/tcp/127.0.0.1/$ws_port") 2>/dev/null || die "nothing listens on 127.0.0.1:$ws_port"
if command -v ss >/dev/null; then
	ss -Hltn "( sport = :$ws_port or sport = :$stomp_port )" | awk '{print "   listening on " $4}'
fi
log "Web-STOMP: ws://127.0.0.1:$ws_port/ws (login guest/guest)"

pid=$(rabbitmqctl -q eval 'list_to_integer(os:getpid()).' 2>/dev/null || true)
if [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/limits" ]; then
	soft=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")
	log "broker pid $pid (chatbench -peer-pid $pid): soft open-files limit $soft"
	if [ "$soft" != unlimited ] && [ "$soft" -lt 1100 ]; then
		log "below what 1,000+ connections need; $env_conf raises it at the broker's next start (this script does not restart it)"
	fi
fi
