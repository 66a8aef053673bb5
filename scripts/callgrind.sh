#!/usr/bin/env bash
# Cost per request under callgrind: instructions and allocations per request of bare
# Rocket's `/json` route (the base, 1.00), rocket-session-store, rocket_flex_session and
# examples/counter (`/counter`, memory and Redis; one session, and new visitors), with
# Redis's own time per command for the Redis rows. Instruction counts do not move with the
# machine's load as requests/s do, so they show what a change to the request path costs.
# A benchmark, not a test: CI never runs it.
#
#   bash scripts/callgrind.sh              # prints the table
#   bash scripts/callgrind.sh --write      # also rewrites BENCHMARKS.md's callgrind table
#   CALLGRIND_ONLY=redis bash scripts/callgrind.sh  # only the rows whose server matches
#                                                   # (and bare Rocket, the base)
#   CALLGRIND_KEEP=/tmp/cg bash scripts/callgrind.sh  # keeps the dumps there, for
#                                  # callgrind_annotate --inclusive=yes /tmp/cg/NAME.out
#
# How: the servers of scripts/bench.sh, built once in release in benches/load (one build
# of Rocket for all), run one at a time under `valgrind --tool=callgrind` with one Rocket
# worker, pinned to CPU 0; wrk (-t1 -c4) and a redis-server of the script's own (loopback,
# no persistence) run on CPU 1. For each row: a warm-up of CALLGRIND_WARMUP seconds (2),
# then `callgrind_control --zero`, Redis's `CONFIG RESETSTAT`, wrk for CALLGRIND_SECONDS
# (5), and `callgrind_control --dump`. "One session": every request carries the cookie a
# first request got; "new visitors": no cookie, a new session each request.
#
# - instructions / request: the dump's total Ir over the requests wrk completed;
# - without sha2 compress: less the inclusive cost of calls into sha2's SHA-256 compression
#   function (`sha2::sha256::compress256` and what it calls): valgrind hides SHA-NI, so
#   SHA-256 runs in software here at ~10x its cost on hardware. The ratio to bare Rocket
#   is taken on this figure;
# - allocations / request: callgrind's call counts of malloc, calloc, posix_memalign and
#   aligned_alloc (new blocks; reallocs are printed on stderr, not counted);
# - Redis: `INFO COMMANDSTATS` of the window, each command's usec_per_call and calls per
#   request, and Redis's time per request in all.
set -euo pipefail
cd "$(dirname "$0")/.."

WARMUP=${CALLGRIND_WARMUP:-2}
SECONDS_PER_RUN=${CALLGRIND_SECONDS:-5}
PORT=${CALLGRIND_PORT:-8951}
REDIS_PORT=${CALLGRIND_REDIS_PORT:-6397}
LOAD_TARGET=${LOAD_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/load}
SECRET_KEY=hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=
WRITE=${1:-}
case $WRITE in "" | --write) ;; *) echo "usage: bash scripts/callgrind.sh [--write]" >&2; exit 2 ;; esac

source scripts/packages.sh
install_missing valgrind:valgrind wrk:wrk redis-server:redis-server redis-cli:redis-tools \
  curl:curl taskset:util-linux python3:python3

echo "building (release)..." >&2
CARGO_TARGET_DIR=$LOAD_TARGET cargo build --release --quiet --manifest-path benches/load/Cargo.toml \
  --bin bare --bin ours --bin flex --bin store
declare -A binary=(
  [bare]=$LOAD_TARGET/release/bare
  [ours-memory]=$LOAD_TARGET/release/ours
  [ours-redis]=$LOAD_TARGET/release/ours
  [flex-memory]=$LOAD_TARGET/release/flex
  [flex-redis]=$LOAD_TARGET/release/flex
  [store-memory]=$LOAD_TARGET/release/store
)

work=$(mktemp -d)
server_pid=""
dumps=0
redis_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize no \
  --logfile "$work/redis.log" &
redis_pid=$!
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG ||
  { echo "redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }

# Each server's settings, as scripts/bench.sh gives them (the memory store's cap above
# what the new-visitor runs create).
declare -A settings=(
  [bare]=""
  [ours-memory]="ROCKET_SESSIONS={memory={max_sessions=3000000}}"
  [ours-redis]="ROCKET_SESSIONS={store=\"redis\",redis={url=\"$REDIS_URL\",prefix=\"ours:\"}}"
  [flex-memory]=""
  [flex-redis]="FLEX_REDIS_URL=$REDIS_URL"
  [store-memory]=""
)

# serve NAME: starts NAME's server under callgrind and waits until it answers (valgrind
# reads the binary's debug info first: tens of seconds).
serve() {
  local name=$1 extra=()
  [ -n "${settings[$name]}" ] && extra=("${settings[$name]}")
  env ROCKET_PORT="$PORT" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=off ROCKET_PROFILE=release \
    ROCKET_WORKERS=1 ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_CLI_COLORS=false "${extra[@]}" \
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$work/$name.%p" \
    "${binary[$name]}" >"$work/$name.log" 2>&1 &
  server_pid=$!
  dumps=0
  for _ in $(seq 1200); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1
}

stop() {
  kill -9 "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# A session cookie ("name=value") from the server's first Set-Cookie on /counter.
session_cookie() {
  curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/counter" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n 1
}

# measure NAME SCENARIO PATH [COOKIE]: warm-up, zeroed counters, one wrk run, a dump;
# appends "NAME SCENARIO REQUESTS DUMP REDIS_STATS" to the results.
measure() {
  local name=$1 scenario=$2 path=$3 cookie=${4:-}
  local url="http://127.0.0.1:$PORT$path" dump requests non2xx
  taskset -c 1 wrk -t1 -c4 -d"${WARMUP}s" ${cookie:+-H "Cookie: $cookie"} "$url" >/dev/null
  callgrind_control --zero "$server_pid" >/dev/null
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  taskset -c 1 wrk -t1 -c4 -d"${SECONDS_PER_RUN}s" ${cookie:+-H "Cookie: $cookie"} "$url" >"$work/wrk.out"
  # callgrind_control returns once the dump is written: the process's next numbered file.
  callgrind_control --dump="$name-$scenario" "$server_pid" >/dev/null
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' >"$work/$name-$scenario.redis"
  dumps=$((dumps + 1))
  dump=$work/$name.$server_pid.$dumps
  [ -s "$dump" ] || { echo "no callgrind dump for $name $scenario at $dump" >&2; exit 1; }
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  [ -n "$non2xx" ] && echo "warning: $name $path had $non2xx non-2xx responses" >&2
  [ -n "${CALLGRIND_KEEP:-}" ] && mkdir -p "$CALLGRIND_KEEP" && cp "$dump" "$CALLGRIND_KEEP/$name-$scenario.out"
  echo "$name $scenario $requests $dump $work/$name-$scenario.redis" >>"$work/results"
  echo "$name $scenario: $requests requests" >&2
}

# server scenario path with-cookie(yes/no); a server's rows run in one process, in order.
rows="bare json_with_cookie /json yes
store-memory counter /counter yes
flex-memory counter /counter yes
ours-memory counter /counter yes
ours-memory new_visitors /counter no
flex-redis counter /counter yes
flex-redis new_visitors /counter no
ours-redis counter /counter yes
ours-redis new_visitors /counter no"
[ -n "${CALLGRIND_ONLY:-}" ] && rows=$(awk -v only="$CALLGRIND_ONLY" '$1 ~ only || $1 == "bare"' <<<"$rows")

: >"$work/results"
current=""
while read -r name scenario path with <&3; do
  if [ "$name" != "$current" ]; then
    [ -n "$current" ] && stop
    echo "starting $name under callgrind..." >&2
    serve "$name"
    current=$name
  fi
  c=""
  [ "$with" = yes ] && c=$(session_cookie)
  measure "$name" "$scenario" "$path" "$c"
done 3<<<"$rows"
stop

python3 scripts/callgrind_report.py "$work/results" ${WRITE:+--write}
