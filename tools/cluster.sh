#!/usr/bin/env bash
# Runs several prism-server replicas behind nginx on loopback, sharing one PostgreSQL and one Redis
# (tools/services.sh), for a local try, the cluster tests (Tests/interop/cluster.py) and the bench.
#
#   tools/cluster.sh start [--replicas N] [--dir DIR] [--port PORT] [--config FILE] [-- SERVER ARGS...]
#   tools/cluster.sh status [--dir DIR]    each process, alive or not, and the addresses
#   tools/cluster.sh stop [--dir DIR]      SIGTERM to every replica (then SIGKILL), nginx, Redis, PostgreSQL
#   tools/cluster.sh destroy [--dir DIR]   stop, then delete DIR and the PostgreSQL data
#
# start prints DIR/cluster.env: the front addresses (FRONT_H2C: gRPC over cleartext HTTP/2;
# FRONT_HTTP: HTTP/1.1; FRONT_TLS: both, by ALPN, with the certificate TLS_CA), each replica's address
# and pid, and the database and Redis URLs. --port PORT puts the front on PORT, PORT+1 and PORT+2
# (default 8080; 0 picks free ports); replicas, PostgreSQL and Redis always get free ports. Replicas
# inherit the environment (vendor keys and base URLs, PRISM_PLUGIN_PATH), get PRISM_DATABASE_URL,
# PRISM_REDIS_URL and a PRISM_DATA_DIR of their own, and run PRISM_SERVER_BIN (default: the release
# build if there is one, else the debug build). nginx's config is deploy/nginx.conf, rendered into
# DIR/nginx for these ports and paths.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services="$root/tools/services.sh"

# How long one replica may take to print its listening line (a debug build on a busy 2-core machine).
REPLICA_START_TIMEOUT_S=60
# How long a replica may take to exit after SIGTERM (its shutdown grace period plus slack).
REPLICA_STOP_TIMEOUT_S=20
# How long the whole cluster may take to answer /readyz through nginx once every process runs.
READY_TIMEOUT_S=60

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '4,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[[ $# -ge 1 ]] || usage
action=$1; shift
replicas=2 dir="${TMPDIR:-/tmp}/prism-cluster" port=8080 config="" server_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --replicas) replicas=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    --config)
      [[ -f "${2:?}" ]] || die "--config $2: no such file"
      config="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --) shift; server_args=("$@"); break ;;
    *) usage ;;
  esac
done
[[ "$replicas" =~ ^[1-9][0-9]?$ ]] || die "--replicas must be 1 to 99, not $replicas"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
state="$dir/cluster.env"

# Appends NAME=VALUE to the state file, so that stop finds whatever a failed start left running.
remember() { printf '%s=%q\n' "$1" "$2" >>"$state"; }

# Prints N free loopback TCP ports (held together while chosen, so they differ).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

server_binary() {
  local bin="${PRISM_SERVER_BIN:-}"
  if [[ -z "$bin" ]]; then
    bin="$root/.build/release/prism-server"
    [[ -x "$bin" ]] || bin="$root/.build/debug/prism-server"
  fi
  [[ -x "$bin" ]] || die "no prism-server at $bin: swift build (or set PRISM_SERVER_BIN)"
  echo "$bin"
}

# Writes DIR/nginx/nginx.conf: deploy/nginx.conf with this cluster's replicas (every "# replica"
# line of an upstream repeated once per replica), front ports, certificate, and paths in DIR.
render_nginx() {  # h2c http tls replica-ports...
  local h2c=$1 http=$2 tls=$3; shift 3
  local user_line="user $(id -un);"
  [[ $(id -u) -eq 0 ]] || user_line=""  # nginx ignores (and warns about) `user` when not root
  awk -v ports="$*" -v h2c="$h2c" -v http="$http" -v tls="$tls" -v d="$dir/nginx" -v user_line="$user_line" '
    BEGIN { n = split(ports, p, " ") }
    /^user /               { if (user_line != "") print user_line; next }
    /^pid /                { print "pid " d "/nginx.pid;"; next }
    /^error_log /          { print "error_log " d "/error.log warn;"; next }
    /_temp_path /          { sub(/\/var\/lib\/nginx\//, d "/tmp/") }
    /^ *access_log /       { sub(/\/var\/log\/nginx\/prism-access.log/, d "/access.log") }
    /# front tls$/ && /listen/ { sub(/listen [^;]*;/, "listen 127.0.0.1:" tls " ssl http2;") }
    /# front h2c$/         { sub(/listen [^;]*;/, "listen 127.0.0.1:" h2c " http2;") }
    /# front http$/        { sub(/listen [^;]*;/, "listen 127.0.0.1:" http ";") }
    /ssl_certificate / && /# front tls$/     { sub(/ssl_certificate [^;]*;/, "ssl_certificate " d "/tls/cert.pem;") }
    /ssl_certificate_key / && /# front tls$/ { sub(/ssl_certificate_key [^;]*;/, "ssl_certificate_key " d "/tls/key.pem;") }
    /^ *upstream /         { upstream = $2; first = 1 }
    /# replica$/ {
      if (first) {
        for (i = 1; i <= n; i++) { line = $0; sub(/127\.0\.0\.1:[0-9]+/, "127.0.0.1:" p[i], line); print line }
        first = 0
      }
      next
    }
    { print }
  ' "$root/deploy/nginx.conf" >"$dir/nginx/nginx.conf"
}

# A self-signed certificate for localhost and 127.0.0.1: the TLS front's, and the CA to trust.
make_certificate() {
  mkdir -p "$dir/nginx/tls"
  [[ -f "$dir/nginx/tls/cert.pem" ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$dir/nginx/tls/key.pem" -out "$dir/nginx/tls/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not make the front's certificate"
}

wait_listening_line() {  # index pid
  local i=$1 pid=$2 out="$dir/replica-$1/stdout.log"
  local deadline=$((SECONDS + REPLICA_START_TIMEOUT_S))
  until grep -q '^prism-server listening on ' "$out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "replica $i exited at start: $(tail -5 "$dir/replica-$i/stderr.log")"
    ((SECONDS < deadline)) || die "replica $i printed no listening line in ${REPLICA_START_TIMEOUT_S}s"
    sleep 0.1
  done
}

# Succeeds when GET /readyz at the address answers 200 "ready" (curl flags pick the protocol).
ready() {  # address, then curl flags
  local address=$1; shift
  [[ "$(curl -s --max-time 2 "$@" "$address/readyz" 2>/dev/null)" == ready ]]
}

start() {
  if [[ -f "$state" ]]; then
    die "$dir already holds a cluster ($state): tools/cluster.sh stop --dir $dir first"
  fi
  command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx-light)"
  local bin h2c http tls
  bin=$(server_binary)
  : >"$state"
  # Any failure from here on (die exits) stops whatever was started.
  trap 'log "start failed; stopping what was started"; stop_all >/dev/null 2>&1 || true' EXIT
  if [[ "$port" == 0 ]]; then
    read -r h2c http tls <<<"$(free_ports 3)"
  else
    h2c=$port http=$((port + 1)) tls=$((port + 2))
  fi
  local pg_port redis_port replica_ports
  read -r pg_port redis_port replica_ports <<<"$(free_ports $((replicas + 2)))"
  remember DIR "$dir"

  log "PostgreSQL on :$pg_port, Redis on :$redis_port"
  local database_url redis_url
  database_url=$("$services" postgres start "$dir/postgres" "$pg_port")
  remember DATABASE_URL "$database_url"
  redis_url=$("$services" redis start "$dir/redis" "$redis_port")
  remember REDIS_URL "$redis_url"

  log "$replicas replicas of $bin"
  remember REPLICAS "$replicas"
  local i=0 rport pids=()
  for rport in $replica_ports; do
    i=$((i + 1))
    mkdir -p "$dir/replica-$i/data"
    local args=(--listen "127.0.0.1:$rport")
    [[ -n "$config" ]] && args+=(--config "$config")
    PRISM_DATABASE_URL="$database_url" PRISM_REDIS_URL="$redis_url" PRISM_DATA_DIR="$dir/replica-$i/data" \
      "$bin" "${args[@]}" "${server_args[@]}" </dev/null >"$dir/replica-$i/stdout.log" 2>"$dir/replica-$i/stderr.log" &
    pids+=($!)
    remember "REPLICA_$i" "127.0.0.1:$rport"
    remember "REPLICA_${i}_PID" "$!"
  done
  for i in $(seq "$replicas"); do wait_listening_line "$i" "${pids[$((i - 1))]}"; done

  make_certificate
  mkdir -p "$dir/nginx/tmp"
  render_nginx "$h2c" "$http" "$tls" $replica_ports
  nginx -t -q -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" 2>"$dir/nginx/test.log" ||
    die "nginx refuses the rendered config: $(cat "$dir/nginx/test.log")"
  nginx -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" ||
    die "nginx did not start: $(tail -5 "$dir/nginx/error.log")"
  remember NGINX_PID_FILE "$dir/nginx/nginx.pid"
  remember FRONT_H2C "127.0.0.1:$h2c"
  remember FRONT_HTTP "127.0.0.1:$http"
  remember FRONT_TLS "127.0.0.1:$tls"
  remember TLS_CA "$dir/nginx/tls/cert.pem"

  # Ready means: every replica says so itself, and nginx reaches them on each front port.
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  for rport in $replica_ports; do
    until ready "http://127.0.0.1:$rport"; do
      ((SECONDS < deadline)) || die "replica on :$rport is not ready after ${READY_TIMEOUT_S}s (see $dir/replica-*/stderr.log)"
      sleep 0.1
    done
  done
  until ready "http://127.0.0.1:$http" && ready "http://127.0.0.1:$h2c" --http2-prior-knowledge &&
        ready "https://localhost:$tls" --cacert "$dir/nginx/tls/cert.pem" --resolve "localhost:$tls:127.0.0.1"; do
    ((SECONDS < deadline)) || die "nginx does not answer /readyz after ${READY_TIMEOUT_S}s (see $dir/nginx/error.log)"
    sleep 0.1
  done
  trap - EXIT
  log "ready: gRPC on 127.0.0.1:$h2c, HTTP/1.1 on 127.0.0.1:$http, TLS on 127.0.0.1:$tls"
  cat "$state"
}

# Stops every process the state file names, whatever state each is in.
stop_all() {
  [[ -f "$state" ]] || { log "nothing runs in $dir"; return 0; }
  # shellcheck disable=SC1090
  source "$state"
  if [[ -n "${NGINX_PID_FILE:-}" && -f "$NGINX_PID_FILE" ]]; then
    local npid
    npid=$(cat "$NGINX_PID_FILE")
    kill -TERM "$npid" 2>/dev/null || true  # fast shutdown: streams are cut, as the replicas' are
    for _ in $(seq 100); do kill -0 "$npid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$npid" 2>/dev/null || true
  fi
  local i pid
  for i in $(seq "${REPLICAS:-0}"); do
    pid=$(eval echo "\${REPLICA_${i}_PID:-}")
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for i in $(seq "${REPLICAS:-0}"); do
    pid=$(eval echo "\${REPLICA_${i}_PID:-}")
    [[ -n "$pid" ]] || continue
    for _ in $(seq $((REPLICA_STOP_TIMEOUT_S * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "replica $i (pid $pid) did not exit on SIGTERM; killed"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  [[ -n "${REDIS_URL:-}" ]] && "$services" redis stop "$dir/redis"
  [[ -n "${DATABASE_URL:-}" ]] && "$services" postgres stop "$dir/postgres"
  rm -f "$state"
}

status() {
  [[ -f "$state" ]] || { echo "no cluster in $dir"; return 1; }
  # shellcheck disable=SC1090
  source "$state"
  local i pid alive=0 line
  for i in $(seq "${REPLICAS:-0}"); do
    pid=$(eval echo "\${REPLICA_${i}_PID:-}")
    line="replica $i $(eval echo "\${REPLICA_$i:-}") pid $pid"
    if kill -0 "$pid" 2>/dev/null; then echo "$line running"; alive=$((alive + 1)); else echo "$line NOT running"; fi
  done
  local npid=""
  [[ -f "${NGINX_PID_FILE:-/nonexistent}" ]] && npid=$(cat "$NGINX_PID_FILE")
  if [[ -n "$npid" ]] && kill -0 "$npid" 2>/dev/null; then echo "nginx pid $npid running"; else echo "nginx NOT running"; fi
  redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && echo "redis $REDIS_URL running" || echo "redis $REDIS_URL NOT answering"
  echo "postgres $DATABASE_URL"
  echo "front: gRPC $FRONT_H2C, HTTP/1.1 $FRONT_HTTP, TLS $FRONT_TLS ($alive of $REPLICAS replicas running)"
  if ready "http://$FRONT_HTTP"; then echo "ready"; else echo "NOT ready"; return 1; fi
}

case "$action" in
  start) start ;;
  stop) stop_all ;;
  status) status ;;
  destroy)
    stop_all
    "$services" postgres destroy "$dir/postgres" >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
