#!/usr/bin/env bash
# The gRPC benchmark: Prism against gRPC C++, grpc-go, grpc-swift-2 and Python grpcio, driven by
# h2load on loopback, alternating the servers round by round so that noise from the rest of the
# machine falls on all of them. Workloads: unary grpc.health.v1.Health/Check and server-streaming
# grpc.testing.TestService/StreamingOutputCall. Prints req/s, p50/p99 and Prism/peer per workload.
# A tool run by hand, never by tests. Settings are environment variables (see below).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
SCRATCH="$REPO/.build-bench"
PEERS="$SCRATCH/peers"

ROUNDS="${ROUNDS:-3}"                    # each server runs each workload this many times
UNARY_N="${UNARY_N:-200000}"             # Health/Check requests per run
UNARY_FLAGS="${UNARY_FLAGS:--c 8 -m 32 -t 1}"
STREAM_N="${STREAM_N:-2000}"             # StreamingOutputCall calls per run
STREAM_MESSAGES="${STREAM_MESSAGES:-1000}" # responses per call
STREAM_SIZE="${STREAM_SIZE:-10}"         # payload bytes per response
STREAM_FLAGS="${STREAM_FLAGS:--c 8 -m 8 -t 1}"
SERVERS="${SERVERS:-prism go cpp swift python}"
PYTHON_DIVISOR="${PYTHON_DIVISOR:-10}"  # Python grpcio is ~25x slower: fewer requests keep runs short
PORT_BASE="${PORT_BASE:-50700}"
SKIP_BUILD="${SKIP_BUILD:-0}"            # 1: use the binaries already in .build-bench
WORKLOADS="${WORKLOADS:-unary streaming}" # which of the two to time
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-$SCRATCH/release/prism-server}" # the "prism" server
PRISM_BASE_BIN="${PRISM_BASE_BIN:-}"     # the "base" server: a second prism-server build to compare

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[[ "$SKIP_BUILD" == 1 ]] || "$BENCH_DIR/build.sh"

RESULTS="$SCRATCH/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"

# --- Request bodies: gRPC length-prefixed messages, uncompressed. ---------------------------------
# HealthCheckRequest{} is empty: the frame is the 5-byte header alone.
printf '\x00\x00\x00\x00\x00' >"$RESULTS/health-check.bin"
# StreamingOutputCallRequest{response_parameters: STREAM_MESSAGES x {size: STREAM_SIZE}}; also
# writes how many response bytes (frames included) a correct server sends back for it.
python3 - "$STREAM_MESSAGES" "$STREAM_SIZE" "$RESULTS" <<'PY'
import struct, sys
def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80); n >>= 7
    out.append(n)
    return bytes(out)
def frame(message):
    return b"\x00" + struct.pack(">I", len(message)) + message
count, size, results = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
params = b"\x08" + varint(size)                             # ResponseParameters.size
request = (b"\x12" + varint(len(params)) + params) * count  # field 2, repeated
payload = (b"\x12" + varint(size) + bytes(size)) if size else b""  # Payload.body
response = b"\x0a" + varint(len(payload)) + payload         # StreamingOutputCallResponse.payload
open(results + "/streaming-output-call.bin", "wb").write(frame(request))
open(results + "/streaming-output-call.expected", "w").write(str(count * len(frame(response))))
PY

# --- Servers. -------------------------------------------------------------------------------------
declare -A PORT PID
server_command() {
  local port="$1"
  case "$2" in
    prism) echo "$PRISM_SERVER_BIN --listen 127.0.0.1:$port --interop" ;;
    base) [[ -n "$PRISM_BASE_BIN" ]] || die "server 'base' needs PRISM_BASE_BIN"
      echo "$PRISM_BASE_BIN --listen 127.0.0.1:$port --interop" ;;
    go) echo "$PEERS/go/go-peer $port" ;;
    cpp) echo "$PEERS/cpp/cpp-peer $port" ;;
    swift) echo "$SCRATCH/swift-peer/release/swift-peer $port" ;;
    python) echo "python3 $BENCH_DIR/python-peer.py $port" ;;
    *) die "unknown server '$2' (known: prism base go cpp swift python)" ;;
  esac
}

stop_servers() {
  for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_servers EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

index=0
for name in $SERVERS; do
  index=$((index + 1))
  port=$((PORT_BASE + index))
  port_open "$port" && die "port $port is already in use; set PORT_BASE"
  # Each its own data folder: two prism-servers sharing one would turn batches off in one.
  # shellcheck disable=SC2046 # the command is split into words on purpose
  PRISM_DATA_DIR="$RESULTS/data-$name" $(server_command "$port" "$name") >"$RESULTS/$name.server.log" 2>&1 &
  PID[$name]=$!
  PORT[$name]=$port
  for _ in $(seq 300); do port_open "$port" && break; sleep 0.1; done
  port_open "$port" || die "$name did not start listening on $port (see $RESULTS/$name.server.log)"
  log "$name listening on 127.0.0.1:$port (pid ${PID[$name]})"
done

# --- Check that every server really answers with grpc-status 0 and the expected bytes. -----------
GRPC_HEADERS=(-H 'content-type: application/grpc' -H 'te: trailers')
HEALTH_PATH=/grpc.health.v1.Health/Check
STREAM_PATH=/grpc.testing.TestService/StreamingOutputCall
check_call() {  # name path body expected-response-bytes
  local url="http://127.0.0.1:${PORT[$1]}$2" status bytes
  status="$(nghttp -nv -d "$3" "${GRPC_HEADERS[@]}" "$url" | sed -n 's/.*recv (stream_id=[0-9]*) grpc-status: //p')"
  bytes="$(nghttp -d "$3" "${GRPC_HEADERS[@]}" "$url" | wc -c)"
  [[ "$status" == 0 && "$bytes" == "$4" ]] \
    || die "$1 $2: grpc-status '${status}', $bytes response bytes (expected 0 and $4)"
}
stream_bytes="$(cat "$RESULTS/streaming-output-call.expected")"
for name in $SERVERS; do
  check_call "$name" "$HEALTH_PATH" "$RESULTS/health-check.bin" 7  # 5 + HealthCheckResponse 08 01
  [[ " $WORKLOADS " == *" streaming "* ]] || continue
  check_call "$name" "$STREAM_PATH" "$RESULTS/streaming-output-call.bin" "$stream_bytes"
done
log "every server answers both calls with grpc-status 0"

# --- Load: the CPU the rest of the machine used while we measured. --------------------------------
cpu_busy_total() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
process_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# user+sys of the reaped children (h2load, nghttp) as `times` printed it, in clock ticks. `times`
# itself must run in this shell, not in $(...): a subshell starts with no children of its own.
ticks_of_times() {
  awk -v hz="$(getconf CLK_TCK)" 'NR==2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
    print int((u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz) }' "$1"
}
servers_ticks() { local t=0; for name in $SERVERS; do t=$((t + $(process_ticks "${PID[$name]}"))); done; echo "$t"; }

# --- Runs, alternated. ----------------------------------------------------------------------------
run_h2load() {  # workload name round n flags path body
  local out="$RESULTS/$1.$2.$3"
  # shellcheck disable=SC2086 # the flags are split into words on purpose
  h2load $5 -n "$4" -d "$7" "${GRPC_HEADERS[@]}" --log-file="$out.log" \
    "http://127.0.0.1:${PORT[$2]}$6" >"$out.out" 2>&1 || die "h2load failed: see $out.out"
  log "$1 $2 round $3: $(grep -m1 '^finished in' "$out.out")"
}
n_for() { if [[ "$2" == python ]]; then echo $(($1 / PYTHON_DIVISOR)); else echo "$1"; fi; }

read -r busy0 total0 <<<"$(cpu_busy_total)"
times >"$RESULTS/times.0"
ours0=$(($(servers_ticks) + $(ticks_of_times "$RESULTS/times.0")))
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for name in $SERVERS; do  # warm-up, not recorded
  h2load $UNARY_FLAGS -n "$(n_for $((UNARY_N / 10)) "$name")" -d "$RESULTS/health-check.bin" \
    "${GRPC_HEADERS[@]}" "http://127.0.0.1:${PORT[$name]}$HEALTH_PATH" >/dev/null
done
for round in $(seq "$ROUNDS"); do
  [[ " $WORKLOADS " == *" unary "* ]] || break
  for name in $SERVERS; do
    run_h2load unary "$name" "$round" "$(n_for "$UNARY_N" "$name")" "$UNARY_FLAGS" \
      "$HEALTH_PATH" "$RESULTS/health-check.bin"
  done
done
for round in $(seq "$ROUNDS"); do
  [[ " $WORKLOADS " == *" streaming "* ]] || break
  for name in $SERVERS; do
    run_h2load streaming "$name" "$round" "$(n_for "$STREAM_N" "$name")" "$STREAM_FLAGS" \
      "$STREAM_PATH" "$RESULTS/streaming-output-call.bin"
  done
done
read -r busy1 total1 <<<"$(cpu_busy_total)"
times >"$RESULTS/times.1"
ours1=$(($(servers_ticks) + $(ticks_of_times "$RESULTS/times.1")))

cat >"$RESULTS/meta.env" <<META
servers="$SERVERS"
prism="$PRISM_SERVER_BIN"
base="$PRISM_BASE_BIN"
rounds=$ROUNDS
unary="h2load $UNARY_FLAGS -n $UNARY_N (python: /$PYTHON_DIVISOR)"
streaming="h2load $STREAM_FLAGS -n $STREAM_N, $STREAM_MESSAGES x $STREAM_SIZE-byte responses per call (python: /$PYTHON_DIVISOR)"
stream_messages=$STREAM_MESSAGES
cores=$(nproc)
load_start="$load_start"
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
busy_ticks=$((busy1 - busy0))
total_ticks=$((total1 - total0))
ours_ticks=$((ours1 - ours0))
META
python3 "$BENCH_DIR/report.py" "$RESULTS" | tee "$RESULTS/report.txt"
