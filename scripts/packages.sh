# Sourced by scripts/test.sh, bench.sh, callgrind.sh and redis-scripts.sh: installs the
# Debian packages a script needs when they are missing.

# Runs a command as root: as it is when the script runs as root, else through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# install_missing TOOL:PACKAGE... [-- PACKAGE...]: installs, quietly, the package of each
# TOOL not on the PATH, and each PACKAGE after `--` (ones the caller found missing its
# own way); nothing when nothing is missing.
install_missing() {
  local missing=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    command -v "${1%%:*}" >/dev/null || missing+=("${1#*:}")
    shift
  done
  [ $# -gt 0 ] && shift
  missing+=("$@")
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
