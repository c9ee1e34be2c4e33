#!/usr/bin/env bash
# The scale-out benchmark: what nginx in front of prism-server costs, and how 1, 2 and 3 replicas
# behind it compare with one replica reached directly, on this machine. Three clusters run at once
# (tools/cluster.sh: 1, 2 and 3 release replicas behind nginx, deploy/nginx.conf); rounds alternate
# over the four targets so that noise falls on all of them. Workloads: unary Health/Check (h2load,
# as tools/bench/grpc) and a streamed Generate against the Go fake OpenAI vendor (the load client
# and fake of tools/bench/overhead). Prints req/s, latency and CPU per request, and each target's
# ratio to direct. A tool run by hand, never by tests. Settings are environment variables below.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
OVERHEAD="$REPO/tools/bench/overhead"
TOOLS="$REPO/.build-bench/overhead"         # the Go fake and load client, built by overhead/build.sh

ROUNDS="${ROUNDS:-3}"                        # every target runs every workload this many times
HEALTH_N="${HEALTH_N:-40000}"                # Health/Check requests per run
HEALTH_FLAGS="${HEALTH_FLAGS:--c 8 -m 32 -t 1}"
GENERATE_CONCURRENCY="${GENERATE_CONCURRENCY:-64}" # streams in flight
GENERATE_DURATION="${GENERATE_DURATION:-8s}" # measuring time of one Generate run, after WARMUP
WARMUP="${WARMUP:-2s}"
DELTAS="${DELTAS:-200}"                      # text deltas per answer, DELAY apart (overhead/fake)
DELAY="${DELAY:-2ms}"
REPLICAS="${REPLICAS:-1 2 3}"                # one cluster of each size
SKIP_BUILD="${SKIP_BUILD:-0}"                # 1: use what is built
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-}"     # a release prism-server to use instead of building one

log() { printf 'cluster-bench: %s\n' "$*" >&2; }
die() { printf 'cluster-bench: error: %s\n' "$*" >&2; exit 1; }

[[ "$SKIP_BUILD" == 1 ]] || PRISM_SERVER_BIN="$PRISM_SERVER_BIN" "$OVERHEAD/build.sh"
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-$REPO/.build/release/prism-server}"
PLUGIN="$(dirname "$PRISM_SERVER_BIN")/libprism-plugin-openai.so"
[[ -x "$PRISM_SERVER_BIN" && -f "$PLUGIN" ]] || die "$PRISM_SERVER_BIN or $PLUGIN is missing"
[[ -x "$TOOLS/fake" && -x "$TOOLS/load" ]] || die "the Go tools are missing: run $OVERHEAD/build.sh"
command -v h2load >/dev/null || die "h2load is missing (apt-get install nghttp2-client)"

RESULTS="$REPO/.build-bench/cluster/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS/plugins"
# Only the OpenAI plugin, so that nothing else loads; the host refuses group-writable files.
install -m 0644 "$PLUGIN" "$RESULTS/plugins/"
chmod 0755 "$RESULTS/plugins"
printf '\x00\x00\x00\x00\x00' >"$RESULTS/health-check.bin"  # an empty HealthCheckRequest, framed
KEY="bench-key"

FAKE_PID=""
stop() {
  for r in $REPLICAS; do "$REPO/tools/cluster.sh" destroy --dir "$RESULTS/cluster-$r" >/dev/null 2>&1 || true; done
  [[ -n "$FAKE_PID" ]] && kill "$FAKE_PID" 2>/dev/null || true
}
trap stop EXIT

fake_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$TOOLS/fake" --port "$fake_port" --deltas "$DELTAS" --delay "$DELAY" --key "$KEY" >"$RESULTS/fake.log" 2>&1 &
FAKE_PID=$!
for r in $REPLICAS; do
  log "starting a cluster of $r replica(s)"
  OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="http://127.0.0.1:$fake_port/v1" PRISM_PLUGIN_PATH="$RESULTS/plugins" \
    PRISM_SERVER_BIN="$PRISM_SERVER_BIN" "$REPO/tools/cluster.sh" start --dir "$RESULTS/cluster-$r" --port 0 \
    --replicas "$r" -- --log-level warning >/dev/null
done

# Targets: name, h2c address, the pids whose CPU is Prism's, the pids whose CPU is nginx's.
declare -A ADDR PRISM_PIDS NGINX_PIDS
TARGETS=()
state() { (source "$RESULTS/cluster-$1/cluster.env"; eval echo "\$$2"); }
first=$(echo "$REPLICAS" | awk '{print $1}')
TARGETS+=(direct)
ADDR[direct]=$(state "$first" REPLICA_1)
PRISM_PIDS[direct]=$(state "$first" REPLICA_1_PID)
NGINX_PIDS[direct]=""
for r in $REPLICAS; do
  name="nginx-$r"
  TARGETS+=("$name")
  ADDR[$name]=$(state "$r" FRONT_H2C)
  PRISM_PIDS[$name]=$(for i in $(seq "$r"); do state "$r" "REPLICA_${i}_PID"; done | xargs)
  master=$(cat "$RESULTS/cluster-$r/nginx/nginx.pid")
  NGINX_PIDS[$name]="$master $(pgrep -P "$master" | xargs)"
done

ticks() { local t=0 pid; for pid in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$t"; }
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# Every target answers both workloads before anything is timed.
for target in "${TARGETS[@]}"; do
  status=$(nghttp -nv -d "$RESULTS/health-check.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://${ADDR[$target]}/grpc.health.v1.Health/Check" | sed -n 's/.*recv (stream_id=[0-9]*) grpc-status: //p')
  [[ "$status" == 0 ]] || die "$target: Health/Check answered grpc-status '$status'"
  "$TOOLS/load" --target prism --addr "${ADDR[$target]}" --expect-tokens "$DELTAS" --concurrency 1 --requests 2 \
    --warmup 0s --ramp 0s | grep -q '"errors":0,' || die "$target: Generate does not stream $DELTAS deltas"
done
log "targets: $(for t in "${TARGETS[@]}"; do printf '%s=%s ' "$t" "${ADDR[$t]}"; done)"

printf 'workload\ttarget\tround\tprism_ticks\tnginx_ticks\tbusy_ticks\ttotal_ticks\n' >"$RESULTS/runs.tsv"
measure() {  # workload target round, then the command
  local workload=$1 target=$2 round=$3; shift 3
  local p0 n0 b0 t0 p1 n1 b1 t1
  p0=$(ticks "${PRISM_PIDS[$target]}") n0=$(ticks "${NGINX_PIDS[$target]}")
  read -r b0 t0 <<<"$(machine_ticks)"
  "$@"
  read -r b1 t1 <<<"$(machine_ticks)"
  p1=$(ticks "${PRISM_PIDS[$target]}") n1=$(ticks "${NGINX_PIDS[$target]}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$target" "$round" $((p1 - p0)) $((n1 - n0)) $((b1 - b0)) $((t1 - t0)) >>"$RESULTS/runs.tsv"
}
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for target in "${TARGETS[@]}"; do
    out="$RESULTS/health.$target.$round"
    # shellcheck disable=SC2086 # the flags are split into words on purpose
    measure health "$target" "$round" h2load $HEALTH_FLAGS -n "$HEALTH_N" -d "$RESULTS/health-check.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$out.log" \
      "http://${ADDR[$target]}/grpc.health.v1.Health/Check" >"$out.out" 2>&1 || die "h2load failed: see $out.out"
    log "health $target round $round: $(grep -m1 '^finished in' "$out.out")"
    out="$RESULTS/generate.$target.$round"
    measure generate "$target" "$round" "$TOOLS/load" --target prism --addr "${ADDR[$target]}" --expect-tokens "$DELTAS" \
      --concurrency "$GENERATE_CONCURRENCY" --duration "$GENERATE_DURATION" --warmup "$WARMUP" \
      --samples "$out.samples" >"$out.json" 2>"$out.err" || die "load failed: see $out.err"
    log "generate $target round $round: $(cat "$out.json")"
  done
done

cat >"$RESULTS/meta.env" <<META
targets="${TARGETS[*]}"
rounds=$ROUNDS
health="h2load $HEALTH_FLAGS -n $HEALTH_N"
generate="$GENERATE_CONCURRENCY streams, $GENERATE_DURATION after $WARMUP warm-up; $DELTAS deltas $DELAY apart"
prism="$PRISM_SERVER_BIN"
nginx="$(nginx -v 2>&1 | sed 's/.*: //')"
cores=$(nproc)
load_start="$load_start"
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
META
python3 "$BENCH_DIR/report.py" "$RESULTS" | tee "$RESULTS/report.txt"
