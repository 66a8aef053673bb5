#!/usr/bin/env bash
# Floods the release build of examples/login as strangers with no account would, and says
# what the stores kept (SECURITY.md, "Denial of service by count"):
#   1. `GET /login` for 10 s on the file store, then on Redis: how many sessions it stored;
#   2. on the memory store with the default config, alice logs in, then 30 s of anonymous
#      `GET /counter` (each a new session): whether alice is still logged in.
# Needs wrk, redis-server and curl (apt-get install wrk redis-server curl). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8111}
REDIS_PORT=${REDIS_PORT:-6399}
SECS=${SECS:-10}
cargo build --release --example login --features file,redis
BIN=target/release/examples/login
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export ROCKET_PROFILE=release ROCKET_PORT=$PORT ROCKET_LOG_LEVEL=off
export ROCKET_SECRET_KEY=${ROCKET_SECRET_KEY:-$(openssl rand -base64 32)}
url=http://127.0.0.1:$PORT

serve() {
  ROCKET_SESSIONS="$1" "$BIN" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "$url/" && return 0; sleep 0.1; done
  echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
flood() { wrk -t2 -c16 -d"$2"s "$url$1" | grep -E "requests in|Non-2xx" || true; }

echo "== file store: ${SECS} s of GET /login"
serve "{store=\"file\",file={dir=\"$work/files\"}}"
flood /login "$SECS"
echo "session files: $(ls "$work/files" | wc -l)"
stop

echo "== Redis: ${SECS} s of GET /login"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --logfile "$work/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
serve "{store=\"redis\",redis={url=\"redis://127.0.0.1:$REDIS_PORT/\"}}"
flood /login "$SECS"
echo "Redis keys: $(redis-cli -p "$REDIS_PORT" dbsize)"
stop

echo "== memory store, default config: alice logs in, then $((SECS * 3)) s of anonymous GET /counter"
serve '{}'
page=$(curl -s -D "$work/headers" "$url/login")
token=$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' <<<"$page" | head -1)
pending=$(sed -n 's/^set-cookie: \(__Host-rocket.sid=[^;]*\);.*/\1/Ip' "$work/headers")
alice=$(curl -s -D - -o /dev/null -H "Cookie: $pending" \
  --data "username=alice&password=wonderland&csrf_token=$token" "$url/login" \
  | sed -n 's/^set-cookie: \(__Host-rocket.sid=[^;]*\);.*/\1/Ip')
dashboard() { curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $alice" "$url/dashboard"; }
echo "alice's dashboard before: $(dashboard)"
flood /counter $((SECS * 3))
echo "alice's dashboard after: $(dashboard) (200: still logged in)"
echo "server resident memory: $(ps -o rss= -p "$pid") KiB"
