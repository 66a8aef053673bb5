#!/usr/bin/env bash
# The many-core method of the scaling table (BENCHMARKS.md): Rocket on W workers pinned to
# W cores, wrk and Redis on cores of their own, through ../shared/devbench/scale.py, for our
# memory and Redis stores beside bare Rocket, rocket_flex_session and rocket-session-store.
#
#   bash scripts/scale.sh            # builds the load servers here (release) and packs
#                                    # them, with redis-server and wrk, into .devbench/
#   cd .devbench && WORKERS="2 8 12" SECS=4 python3 scale.py   # then, on 16+ cores
#   RUN=1 WORKERS=1 SECS=2 bash scripts/scale.sh   # packs and runs here: a check of the
#                                                  # servers list on a small machine
#
# Compare servers only within one run, and say in BENCHMARKS.md which machine gave them.
set -euo pipefail
cd "$(dirname "$0")/.."

LOAD_TARGET=${LOAD_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/load}
DEVBENCH=${DEVBENCH:-../shared/devbench}
[ -f "$DEVBENCH/pack.sh" ] || { echo "no $DEVBENCH/pack.sh: set DEVBENCH to the devbench folder" >&2; exit 1; }

echo "building (release)..." >&2
CARGO_TARGET_DIR=$LOAD_TARGET cargo build --release --quiet --manifest-path benches/load/Cargo.toml
bins=()
for server in bare ours flex store; do bins+=("$server=$LOAD_TARGET/release/$server"); done
bash "$DEVBENCH/pack.sh" "${bins[@]}"

# scale.py's Redis listens on 6391; each server reads no Rocket.toml (it runs in .devbench).
# Our Redis store keeps its default `redis.connections`: the cores it is pinned to.
redis='redis://127.0.0.1:6391/'
cat > .devbench/servers.json <<JSON
[
 {"name": "bare", "bin": "bare", "plain": "/", "count": "/counter"},
 {"name": "ours-memory", "bin": "ours", "plain": "/", "count": "/counter",
  "env": {"ROCKET_SESSIONS": "{memory={max_sessions=3000000}}"}},
 {"name": "ours-redis", "bin": "ours", "plain": "/", "count": "/counter",
  "env": {"ROCKET_SESSIONS": "{store=\"redis\",redis={url=\"$redis\",prefix=\"ours:\"}}"}},
 {"name": "flex-memory", "bin": "flex", "plain": "/", "count": "/counter"},
 {"name": "flex-redis", "bin": "flex", "plain": "/", "count": "/counter",
  "env": {"FLEX_REDIS_URL": "$redis"}},
 {"name": "store-memory", "bin": "store", "plain": "/", "count": "/counter"}
]
JSON
python3 -c 'import json; json.load(open(".devbench/servers.json"))'

if [ -n "${RUN:-}" ]; then
  (cd .devbench && OUT=. python3 scale.py)
else
  echo "packed: on the large machine, cd .devbench && WORKERS=\"2 8 12\" SECS=4 python3 scale.py" >&2
fi
