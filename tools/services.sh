#!/usr/bin/env bash
# Starts and stops throwaway PostgreSQL and Redis servers on loopback for tests, benches and
# tools/cluster.sh: each lives in a folder of its own and is gone when stopped. Prints the URL to use.
#
#   tools/services.sh postgres start DIR [PORT]   initdb into DIR (once), start, create database "prism";
#                                                  prints postgres://prism@127.0.0.1:PORT/prism
#   tools/services.sh postgres stop DIR           fast shutdown (sessions are cut); data kept for a restart
#   tools/services.sh postgres destroy DIR        stop and delete its data
#   tools/services.sh redis start DIR [PORT]      prints redis://127.0.0.1:PORT
#   tools/services.sh redis stop DIR
#
# PostgreSQL refuses to run as root: when root, its folder is owned by and run as the `postgres` user.
# Default ports: 55432 (PostgreSQL), 56379 (Redis); chosen away from the system services' defaults.
set -euo pipefail

die() { echo "tools/services.sh: $*" >&2; exit 1; }
[[ $# -ge 3 ]] || die "usage: tools/services.sh postgres|redis start|stop DIR [PORT]"
engine=$1 action=$2 dir=$3
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# Runs a PostgreSQL program as the user allowed to run it.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$bin" ]] || die "PostgreSQL is not installed (apt-get install postgresql)"
  echo "$bin"
}

# The server's own folder: DIR/pg when the postgres user can reach it, else (DIR under a private
# folder such as mktemp's) a folder in /tmp named after DIR, so any DIR works.
pg_home() {
  if [[ $(id -u) -ne 0 ]] || runuser -u postgres -- test -x "$dir"; then
    echo "$dir/pg"
  else
    echo "/tmp/prism-postgres-$(echo -n "$dir" | sha256sum | cut -c1-16)"
  fi
}

postgres_start() {
  local port=${1:-55432} bin home
  bin=$(pg_bin)
  home=$(pg_home)
  mkdir -p "$home"
  [[ $(id -u) -eq 0 ]] && chown postgres "$home"
  if [[ ! -f "$home/data/PG_VERSION" ]]; then
    as_pg "$bin/initdb" -D "$home/data" -U prism --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -5 "$dir/initdb.log")"
  fi
  # Sockets in its folder, not /var/run/postgresql (which may not exist or belong to another server).
  as_pg "$bin/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 \
    -o "-p $port -k $home -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null ||
    die "PostgreSQL did not start: $(tail -5 "$home/server.log")"
  if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U prism -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='prism'" | grep -q 1; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U prism prism
  fi
  echo "postgres://prism@127.0.0.1:$port/prism"
}

postgres_stop() {
  local home
  home=$(pg_home)
  [[ -f "$home/data/postmaster.pid" ]] || return 0
  as_pg "$(pg_bin)/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null
}

# Stop, then delete the data: for tests done with their server.
postgres_destroy() {
  local home
  home=$(pg_home)
  postgres_stop
  rm -rf "$home"
}

redis_start() {
  local port=${1:-56379}
  command -v redis-server >/dev/null || die "Redis is not installed (apt-get install redis-server)"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  # Wait (bounded) until it answers, so callers can use the URL at once.
  for _ in $(seq 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && { echo "redis://127.0.0.1:$port"; return 0; }
    sleep 0.1
  done
  die "Redis did not answer on port $port: $(tail -5 "$dir/redis.log")"
}

redis_stop() {
  [[ -f "$dir/redis.pid" ]] || return 0
  local pid
  pid=$(cat "$dir/redis.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/redis.pid"
}

case "$engine $action" in
  "postgres start") postgres_start "${4:-}" ;;
  "postgres stop") postgres_stop ;;
  "postgres destroy") postgres_destroy ;;
  "redis start") redis_start "${4:-}" ;;
  "redis stop") redis_stop ;;
  *) die "unknown: $engine $action (postgres start|stop|destroy, redis start|stop; DIR [PORT])" ;;
esac
