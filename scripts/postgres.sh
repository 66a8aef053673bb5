# Sourced by scripts/test.sh and scripts/bench.sh: runs a throwaway PostgreSQL.

# PostgreSQL's programs: Debian keeps them out of PATH, under its major version.
postgres_bin() {
  command -v "$1" 2>/dev/null || ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1
}

# as_user USER command...: runs the command as USER when the script runs as root
# (PostgreSQL and MariaDB refuse to run as root), else as whoever runs it.
as_user() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# spawn_postgres DIR PORT LOG [postgres args...]: a new cluster in DIR with trust
# authentication for the superuser `postgres`, listening on 127.0.0.1:PORT, owned by the
# user `postgres` under root; on the CPUs POSTGRES_CPUS lists, when set (taskset -c).
# It runs in the background: $! is its pid on return.
spawn_postgres() {
  local dir=$1 port=$2 log=$3 user=postgres pin=(); shift 3
  [ "$(id -u)" = 0 ] || user=$(id -un)
  [ -n "${POSTGRES_CPUS:-}" ] && pin=(taskset -c "$POSTGRES_CPUS")
  mkdir -p "$dir" && chown "$user" "$dir" 2>/dev/null || true
  as_user "$user" "$(postgres_bin initdb)" -D "$dir/db" -A trust -U postgres >"$log" 2>&1
  as_user "$user" "${pin[@]}" "$(postgres_bin postgres)" -D "$dir/db" -p "$port" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir" -c fsync=off "$@" \
    >>"$log" 2>&1 &
}
