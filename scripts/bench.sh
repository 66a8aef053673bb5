#!/usr/bin/env bash
# The load benchmark: bare Rocket (and its /json route: /counter's answer without any
# session or cookie work, what Rocket alone costs for that route), rocket_flex_session
# (memory, Redis, PostgreSQL), rocket-session-store and examples/counter (memory, Redis,
# PostgreSQL, SQLite) under the same wrk load, in one run, as ratios to bare Rocket's plain
# route. All of them are built in benches/load, on one build of Rocket, but for our SQLite
# server: benches/load-sqlite (rocket_flex_session's sqlx links another SQLite).
#
#   bash scripts/bench.sh            # prints the table
#   bash scripts/bench.sh --write    # also rewrites BENCHMARKS.md's results and the chart
#   BENCH_ONLY=postgres bash scripts/bench.sh   # only the rows whose server matches (and
#                                               # bare Rocket's plain route, the base)
#
# The servers run pinned to CPU 0, wrk (-t1 -c32), Redis and PostgreSQL on CPU 1. Every
# scenario runs once per round (BENCH_ROUNDS, 5), in random order, for BENCH_SECONDS (5)
# after a 1 s warm-up; rows report the median round. Everything listens on 127.0.0.1 and
# stops with the script.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-5}
PORT=${BENCH_PORT:-8931}
REDIS_PORT=${BENCH_REDIS_PORT:-6399}
POSTGRES_PORT=${BENCH_POSTGRES_PORT:-6398}
LOAD_TARGET=${LOAD_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/load}
SECRET_KEY=hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=
WRITE=${1:-}
# postgres_bin, as_user, spawn_postgres.
source scripts/postgres.sh

source scripts/packages.sh
postgres=()
[ -n "$(postgres_bin initdb)" ] || postgres=(postgresql)
install_missing wrk:wrk redis-server:redis-server redis-cli:redis-tools curl:curl \
  taskset:util-linux -- "${postgres[@]}"

echo "building (release)..." >&2
for bench in load load-sqlite; do
  CARGO_TARGET_DIR=$LOAD_TARGET cargo build --release --quiet --manifest-path benches/$bench/Cargo.toml
done
OURS=$LOAD_TARGET/release/ours
BARE=$LOAD_TARGET/release/bare
FLEX=$LOAD_TARGET/release/flex
STORE=$LOAD_TARGET/release/store
MILLION=$LOAD_TARGET/release/million
OURS_SQLITE=$LOAD_TARGET/release/ours-sqlite

work=$(mktemp -d)
pids=()
chmod 755 "$work"
redis_pid=""
postgres_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  [ -n "$postgres_pid" ] && kill "$postgres_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize no \
  --logfile "$work/redis.log" &
redis_pid=$!
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
redis_up() {
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  return 1
}
redis_up || { echo "redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }

# PostgreSQL counts the statements it runs (pg_stat_statements): one per round trip, as
# sqlx sends each query's parse, bind and execute in one go.
POSTGRES_CPUS=1 spawn_postgres "$work/postgres" "$POSTGRES_PORT" "$work/postgres.log" \
  -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all
postgres_pid=$!
POSTGRES_URL="postgres://postgres@127.0.0.1:$POSTGRES_PORT/postgres"
psql_do() { "$(postgres_bin psql)" "$POSTGRES_URL" -qtAX -v ON_ERROR_STOP=1 -c "$1"; }
for _ in $(seq 100); do psql_do "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
psql_do "SELECT 1" >/dev/null || { echo "PostgreSQL did not start:" >&2; cat "$work/postgres.log" >&2; exit 1; }
psql_do "CREATE EXTENSION pg_stat_statements"
# rocket_flex_session's table, as its documentation asks (it creates none).
psql_do "CREATE TABLE flex_sessions (id text PRIMARY KEY, data text NOT NULL, user_id text, expires timestamptz NOT NULL)"

# The servers, each on its own port, all pinned to CPU 0; only the one under load works.
declare -A port pid
next_port=$PORT
# serve NAME BINARY [ENV=VALUE...]: starts a server and waits for it.
serve() {
  local name=$1 binary=$2; shift 2
  port[$name]=$next_port
  env ROCKET_PORT="$next_port" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=off ROCKET_PROFILE=release \
    ROCKET_SECRET_KEY="$SECRET_KEY" ROCKET_CLI_COLORS=false "$@" taskset -c 0 "$binary" >"$work/$name.log" 2>&1 &
  pids+=($!)
  pid[$name]=$!
  for _ in $(seq 400); do
    curl -sf -o /dev/null "http://127.0.0.1:$next_port/" && { next_port=$((next_port + 1)); return 0; }
    sleep 0.05
  done
  echo "server $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1
}

# A session cookie from a server ("name=value"), from its first Set-Cookie.
session_cookie() {
  curl -s -D - -o /dev/null "http://127.0.0.1:${port[$1]}/counter" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n 1
}

resident_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/${pid[$1]}/status"; }

# load SERVER PATH [COOKIE]: one wrk run after a 1 s warm-up; prints
# "req/s p99_ms requests redis_trips/req redis_cmds/req"
load() {
  local server=$1 path=$2 cookie=${3:-}
  local url="http://127.0.0.1:${port[$server]}$path"
  taskset -c 1 wrk -t1 -c32 -d1s ${cookie:+-H "Cookie: $cookie"} "$url" >/dev/null
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  psql_do "SELECT pg_stat_statements_reset()" >/dev/null
  taskset -c 1 wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" --latency ${cookie:+-H "Cookie: $cookie"} "$url" >"$work/wrk.out"
  local rps p99 requests non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$work/wrk.out")
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  [ -n "$non2xx" ] && echo "warning: $server $path had $non2xx non-2xx responses" >&2
  case $server in
    *postgres*) echo "$rps $p99 $requests $(postgres_per_request "$requests")" ;;
    *) echo "$rps $p99 $requests $(redis_per_request "$requests")" ;;
  esac
}

# Statements the servers ran on PostgreSQL during a run, per request (twice: each is one
# round trip). The psql calls of this script are left out.
postgres_per_request() {
  psql_do "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
    WHERE query NOT ILIKE '%pg_stat_statements%' AND query <> 'SELECT 1'" |
    awk -v n="$1" '{ printf "%.2f %.2f", $1 / n, $1 / n }'
}

# Redis commands the server sent during a run, per request: client round trips (commands
# less those our Lua scripts run inside one EVALSHA) and all commands. The scripts'
# commands are read from their source; HGETALL is also our load, sent on its own, and
# `/counter` never touches (the one script that runs HGETALL).
SCRIPT_COMMANDS=$(grep -o "redis.call('[A-Z]*'" src/store/redis/scripts.rs | cut -d"'" -f2 |
  tr 'A-Z' 'a-z' | grep -vx hgetall | sort -u | tr '\n' ' ')
redis_per_request() {
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$1" -v inner="$SCRIPT_COMMANDS" '
    BEGIN { split(inner, names, " "); for (i in names) scripted[names[i]] = 1 }
    /^cmdstat_/ { name = substr($1, 9); calls = $3
      if (name ~ /^config/ || name == "info") next
      all += calls
      if (name == "eval" || name == "evalsha") evals += calls
      else if (name in scripted) inside += calls }
    END { trips = all - (evals > 0 ? inside : 0); printf "%.2f %.2f", trips / n, all / n }'
}

results=$work/results
runs=$work/runs
: >"$results"
: >"$runs"

serve bare "$BARE"
# The memory store's cap is raised above what the new-visitor runs create (its peers are
# unbounded): at the default 100,000 the flood would evict the one-session run's session,
# as it is meant to, and that run would measure new visitors instead.
serve ours-memory "$OURS" ROCKET_SESSIONS="{memory={max_sessions=3000000}}"
serve ours-redis "$OURS" ROCKET_SESSIONS="{store=\"redis\",redis={url=\"$REDIS_URL\",prefix=\"ours:\"}}"
# One connection, as the store had before `redis.connections`: what several cost or gain.
serve ours-redis-one "$OURS" ROCKET_SESSIONS="{store=\"redis\",redis={url=\"$REDIS_URL\",prefix=\"one:\",connections=1}}"
serve flex-memory "$FLEX"
serve flex-redis "$FLEX" FLEX_REDIS_URL="$REDIS_URL"
serve store-memory "$STORE"
serve ours-postgres "$OURS" ROCKET_SESSIONS="{store=\"postgres\",sql={url=\"$POSTGRES_URL\"}}"
serve ours-sqlite "$OURS_SQLITE" ROCKET_SESSIONS="{store=\"sqlite\",sql={url=\"sqlite://$work/sessions.db\"}}"
serve flex-postgres "$FLEX" FLEX_POSTGRES_URL="$POSTGRES_URL"
declare -A cookie
for server in bare ours-memory ours-redis ours-redis-one flex-memory flex-redis store-memory ours-postgres ours-sqlite flex-postgres; do
  cookie[$server]=$(session_cookie "$server")
done

# server scenario path with-cookie(yes/no)
scenarios="bare plain / no
bare plain_with_cookie / yes
bare json_with_cookie /json yes
bare counter /counter yes
bare new_visitors /counter no
ours-memory plain / no
ours-memory plain_with_cookie / yes
ours-memory counter /counter yes
ours-memory new_visitors /counter no
ours-redis plain_with_cookie / yes
ours-redis counter /counter yes
ours-redis new_visitors /counter no
ours-redis-one counter /counter yes
ours-redis-one new_visitors /counter no
flex-memory plain / no
flex-memory counter /counter yes
flex-memory new_visitors /counter no
flex-redis counter /counter yes
flex-redis new_visitors /counter no
store-memory plain / no
store-memory counter /counter yes
store-memory new_visitors /counter no
ours-postgres plain_with_cookie / yes
ours-postgres counter /counter yes
ours-postgres new_visitors /counter no
flex-postgres counter /counter yes
flex-postgres new_visitors /counter no
ours-sqlite counter /counter yes
ours-sqlite new_visitors /counter no"

[ -n "${BENCH_ONLY:-}" ] &&
  scenarios=$(awk -v only="$BENCH_ONLY" '$1 ~ only || ($1 == "bare" && $2 == "plain")' <<<"$scenarios")

# Rounds interleave every scenario, in a new random order each round, so the machine's
# noise falls on all of them alike; each row reports its median round.
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  while read -r server scenario path with; do
    c=""
    [ "$with" = yes ] && c=${cookie[$server]}
    echo "$server $scenario $(load "$server" "$path" "$c")" | tee -a "$runs" >&2
  done < <(shuf <<<"$scenarios")
done

while read -r server scenario path with; do
  median=$(awk -v s="$server" -v c="$scenario" '$1 == s && $2 == c' "$runs" | sort -k3 -g |
    awk '{ rows[NR] = $0 } END { print rows[int((NR + 1) / 2)] }')
  read -r _ _ rps p99 requests trips cmds <<<"$median"
  case $server in *redis*) ;; *postgres*) cmds=- ;; *) trips=-; cmds=- ;; esac
  rss=-
  [ "$scenario" = new_visitors ] && rss=$(resident_mb "$server")
  echo "$server $scenario $rps $p99 $requests $trips $cmds $rss" >>"$results"
done <<<"$scenarios"

for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
pids=()

if [ -z "${BENCH_ONLY:-}" ] || [[ ours-million =~ $BENCH_ONLY ]]; then
  # A million sessions of ~100 bytes that all expire 20 s after they were made: resident
  # memory once they are in, and /counter's p99 just before and while they are swept.
  start_time=$(date +%s)
  serve ours-million "$MILLION" MILLION_TTL_SECS=20
  rss=$(sed -n 's/.*resident \([0-9]*\) MB.*/\1/p' "$work/ours-million.log")
  c=$(session_cookie ours-million)
  read -r rps p99 requests _ <<<"$(SECONDS_PER_RUN=3 load ours-million /counter "$c")"
  echo "ours-million counter_before_sweep $rps $p99 $requests - - $rss" | tee -a "$results" >&2
  sleep $(( start_time + 19 - $(date +%s) > 0 ? start_time + 19 - $(date +%s) : 0 ))
  read -r rps p99 requests _ <<<"$(SECONDS_PER_RUN=4 load ours-million /counter "$c")"
  echo "ours-million counter_during_sweep $rps $p99 $requests - - $(resident_mb ours-million)" | tee -a "$results" >&2
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  pids=()
fi

python3 scripts/bench_report.py "$results" ${WRITE:+--write}
