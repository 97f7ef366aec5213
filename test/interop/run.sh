#!/usr/bin/env bash
# Browser-client interop: builds cmd/chat, starts it on 127.0.0.1 with an
# ephemeral port, a throw-away SQLite file and the development token issuer,
# runs `node --test` here against it, and stops it.
#
#   test/interop/run.sh            build and start cmd/chat, run the tests
#   INTEROP_URL=http://host:port test/interop/run.sh
#                                  run the tests against a running service
#                                  (it needs auth.dev.enabled: true)
#
# `go test ./test/interop/` does the same with the service in-process; that
# is how CI (.ci/run) runs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

if [ ! -d node_modules/@stomp/stompjs ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi

if [ -n "${INTEROP_URL:-}" ]; then
	exec node --test --test-concurrency=1 --test-reporter=spec .
fi

tmp=$(mktemp -d)
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/chat" ./cmd/chat)

# An ephemeral port: bind :0, read the port, release it for the server.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export INTEROP_URL="http://127.0.0.1:$port"
# refresh.test.mjs mints short-lived tokens with the service's secret.
export INTEROP_HMAC_SECRET="interop-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

"$tmp/chat" -config "$root/chat.yaml" \
	-set server.addr="127.0.0.1:$port" \
	-set storage.driver=sqlite \
	-set storage.dsn="file:$tmp/chat.db" \
	-set relay.driver=memory \
	-set auth.dev.enabled=true \
	-set auth.jwt.hmac_secret="$INTEROP_HMAC_SECRET" \
	-set features.sockjs=true \
	-set log.level=warn >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 100); do
	if curl -fsS "$INTEROP_URL/healthz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		cat "$tmp/server.log"; echo "the server exited"; exit 1
	fi
	sleep 0.1
done

status=0
node --test --test-concurrency=1 --test-reporter=spec . || status=$?
if [ "$status" -ne 0 ]; then
	echo "--- server log"; cat "$tmp/server.log"
fi
exit "$status"
