#!/usr/bin/env bash
# Which of our server's Redis connections carry the replies under load, as Redis itself
# counts them (MONITOR): examples/counter on the Redis store, new visitors on `/counter`
# (each request its own session, so sessions spread over the connections), once per
# `redis.connections` value. Each connection's replies are read by a task of its own (its
# redis-rs driver), so a connection's share of the commands is its task's share of the
# replies: the scaling issue's "no single task handles every request's reply", shown on a
# machine with too few cores to show it in throughput.
#
#   bash scripts/replies.sh                 # CONNECTIONS="1 2 4", 3 s of load each
#
# The server runs pinned to CPU 0, wrk and Redis to CPU 1 (as in scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-1 2 4}
SECONDS_PER_RUN=${REPLIES_SECONDS:-3}
PORT=${REPLIES_PORT:-8941}
REDIS_PORT=${REPLIES_REDIS_PORT:-6397}
LOAD_TARGET=${LOAD_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/load}
SECRET_KEY=hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=
for tool in wrk redis-server redis-cli curl taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/bench.sh installs it)" >&2; exit 1; }
done

echo "building (release)..." >&2
CARGO_TARGET_DIR=$LOAD_TARGET cargo build --release --quiet --manifest-path benches/load/Cargo.toml --bin ours

work=$(mktemp -d)
server=""
redis_pid=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { cat "$work/redis.log" >&2; exit 1; }

printf '| `redis.connections` | connections that carried commands | share of each (largest first) |\n|---:|---:|---|\n'
for n in $CONNECTIONS; do
  env ROCKET_PORT="$PORT" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=off ROCKET_PROFILE=release \
    ROCKET_SECRET_KEY="$SECRET_KEY" \
    ROCKET_SESSIONS="{store=\"redis\",redis={url=\"redis://127.0.0.1:$REDIS_PORT/\",connections=$n}}" \
    taskset -c 0 "$LOAD_TARGET/release/ours" >"$work/ours.log" 2>&1 &
  server=$!
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/" || { cat "$work/ours.log" >&2; exit 1; }

  taskset -c 1 wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$PORT/counter" >"$work/wrk.out" &
  wrk=$!
  # Watch the middle second of the load: from its first command on the server.
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$REDIS_PORT" dbsize)" -gt 100 ] && break
    sleep 0.05
  done
  timeout 1 redis-cli -p "$REDIS_PORT" monitor >"$work/monitor.out" || true
  wait "$wrk"
  kill "$server"; wait "$server" 2>/dev/null || true
  server=""

  # A client's commands: `[db address]`; those a script runs show `[db lua]` instead.
  awk '$2 ~ /^\[/ && $3 ~ /^[0-9.]+:[0-9]+\]$/ { print $3 }' "$work/monitor.out" |
    sort | uniq -c | sort -rn | awk -v conns="$n" '
      { count[NR] = $1; all += $1 }
      END {
        line = ""
        for (i = 1; i <= NR; i++) line = line sprintf("%s%.2f", (i == 1 ? "" : ", "), count[i] / all)
        printf "| %s | %d | %s |\n", conns, NR, line
      }'
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
done
