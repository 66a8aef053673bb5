#!/usr/bin/env bash
# Redis's own time for the Redis store's two hot scripts, measured alone: the create of a
# new anonymous session (the new-visitor request), with room in its group and in a full
# group (where each create past the cap evicts strangers, as under a flood), and the
# commit of one changed entry (the one-session request). `scripts/callgrind.sh` prints Redis's usec_per_call too, but
# there Redis shares its core with wrk while valgrind runs the server, and the figure
# moves by half from run to run; here nothing else runs.
# A benchmark, not a test: CI never runs it.
#
#   bash scripts/redis-scripts.sh    # prints each script's usec_per_call, one line a run
#   SCRIPTS_SOURCE=<(git show REV:src/store/redis/scripts.rs) bash scripts/redis-scripts.sh
#                                    # the scripts of another revision, to compare
#
# How: the scripts as the store sends them (the prelude and the body, read from
# src/store/redis/scripts.rs), loaded into a redis-server of the script's own (loopback,
# no persistence, pinned to CPU 0), then `redis-benchmark -c 4` on CPU 1: SCRIPTS_REQUESTS
# (100000) creates of fresh random keys into a group with room, as many into a group
# capped at 1000, then as many commits to one session, each after `CONFIG RESETSTAT`,
# SCRIPTS_RUNS (3) times. The arguments are those of the /counter example: one entry,
# sealed (a value of 55 characters), the default lifetime.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${SCRIPTS_REDIS_PORT:-6411}
REQUESTS=${SCRIPTS_REQUESTS:-100000}
RUNS=${SCRIPTS_RUNS:-3}
SOURCE=${SCRIPTS_SOURCE:-src/store/redis/scripts.rs}

source scripts/packages.sh
install_missing redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools \
  taskset:util-linux python3:python3

work=$(mktemp -d)
stop() {
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT

python3 - "$work" "$SOURCE" <<'EOF'
import re, sys
source = open(sys.argv[2]).read()
def script(name):
    return re.search(r'pub\(super\) const ' + name + r': &str = r"(.*?)";\n', source, re.S).group(1)
for name in ("CREATE", "COMMIT"):
    open(f"{sys.argv[1]}/{name.lower()}.lua", "w").write(script("PRELUDE") + script(name))
EOF

taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log" --daemonize yes
# Polled every 0.1 s until it answers, for 10 s at most.
for try in $(seq 101); do
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  if [ "$try" = 101 ]; then echo "redis-server did not answer in 10 s: $work/redis.log" >&2; exit 1; fi
  sleep 0.1
done
create=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat "$work/create.lua")")
commit=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat "$work/commit.lua")")

# The /counter example's session: one sealed entry, the default lifetime (one day).
value="s2:$(printf 'A%.0s' $(seq 52))"
ttl=86400000
index() { echo "sess:{ab}:$1"; }

usec() {
  redis-cli -p "$PORT" INFO commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p'
}

bench() {
  taskset -c 1 redis-benchmark -p "$PORT" -q -c 4 -n "$REQUESTS" "$@" >/dev/null
}

declare -A created
for run in $(seq "$RUNS"); do
  redis-cli -p "$PORT" FLUSHALL >/dev/null
  redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
  for cap in 100000000 1000; do
    bench -r 100000000 EVALSHA "$create" 3 'sess:{ab}__rand_int__' "$(index anonymous)" \
      "$(index signed-in)" "$ttl" "$cap" a m:v 1 m:ttl "$ttl" e:visits "$value"
    created[$cap]=$(usec)
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
  done

  redis-cli -p "$PORT" EVALSHA "$create" 3 'sess:{ab}one' "$(index anonymous)" \
    "$(index signed-in)" "$ttl" 1000 a m:v 1 m:ttl "$ttl" e:visits "$value" >/dev/null
  redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
  bench EVALSHA "$commit" 3 'sess:{ab}one' "$(index anonymous)" "$(index signed-in)" \
    '' '' 1 e:visits "$value"
  committed=$(usec)

  echo "run $run: usec_per_call: create ${created[100000000]}, create in a full group ${created[1000]}, commit ${committed}"
done
