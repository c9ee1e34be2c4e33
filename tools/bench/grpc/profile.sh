#!/usr/bin/env bash
# Profiles one server of the gRPC benchmark (Prism by default) on the unary Health/Check workload
# with valgrind's callgrind, which counts instructions: the counts repeat whatever else the machine
# is doing, unlike perf's cycles (and perf counters are not available on every machine here).
# Collection starts only once the server listens, so start-up is left out. Prints the top functions
# by own and by inclusive instructions, and instructions per request. Usage: profile.sh [SERVER]
# with SERVER one of prism (default), cpp, swift; N=requests (default 20000). WORKLOAD=streaming
# profiles StreamingOutputCall (1,000 x 10-byte responses per call, N default 200) instead.
# Run build.sh first.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
SCRATCH="$REPO/.build-bench"
SERVER="${1:-prism}"
WORKLOAD="${WORKLOAD:-unary}"
case "$WORKLOAD" in
  unary) N="${N:-20000}" FLAGS="${H2LOAD_FLAGS:--c 8 -m 32 -t 1}" PATH_="/grpc.health.v1.Health/Check" ;;
  streaming) N="${N:-200}" FLAGS="${H2LOAD_FLAGS:--c 8 -m 8 -t 1}" PATH_="/grpc.testing.TestService/StreamingOutputCall" ;;
  *) printf 'profile: error: WORKLOAD is unary or streaming\n' >&2; exit 1 ;;
esac
PORT="${PORT:-50799}"
TOP="${TOP:-40}"

die() { printf 'profile: error: %s\n' "$*" >&2; exit 1; }

case "$SERVER" in
  prism) command=("$SCRATCH/release/prism-server" --listen "127.0.0.1:$PORT" --interop) ;;
  cpp) command=("$SCRATCH/peers/cpp/cpp-peer" "$PORT") ;;
  swift) command=("$SCRATCH/swift-peer/release/swift-peer" "$PORT") ;;
  *) die "unknown server '$SERVER' (prism, cpp or swift)" ;;
esac
[[ -x "${command[0]}" ]] || die "${command[0]} is missing: run tools/bench/grpc/build.sh"

OUT="$SCRATCH/profiles/$SERVER-$WORKLOAD-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
if [[ "$WORKLOAD" == unary ]]; then
  printf '\x00\x00\x00\x00\x00' >"$OUT/request.bin"  # an empty HealthCheckRequest, framed
else
  # StreamingOutputCallRequest with 1,000 ResponseParameters{size: 10}: 4,000 bytes, framed.
  { printf '\x00\x00\x00\x0f\xa0'; for _ in $(seq 1000); do printf '\x12\x02\x08\x0a'; done; } >"$OUT/request.bin"
fi

# valgrind 3.19 (Debian 12) cannot read the DWARF 5 that Swift 6 emits and gives up, so profile a
# copy without debug info: function names come from the symbol table, line numbers are lost.
strip --strip-debug -o "$OUT/$(basename "${command[0]}")" "${command[0]}"
command[0]="$OUT/$(basename "${command[0]}")"

cc -O2 -shared -fPIC -o "$OUT/sigsuspend-shim.so" "$BENCH_DIR/valgrind-sigsuspend-shim.c"
LD_PRELOAD="$OUT/sigsuspend-shim.so" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
  "${command[@]}" >"$OUT/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 600); do port_open "$PORT" && break; sleep 0.1; done
port_open "$PORT" || die "$SERVER did not start under valgrind (see $OUT/server.log)"

callgrind_control --instr=on "$pid" >/dev/null
# shellcheck disable=SC2086 # the flags are split into words on purpose
h2load $FLAGS -n "$N" -d "$OUT/request.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://127.0.0.1:$PORT$PATH_" >"$OUT/h2load.out"
grep -E '^(finished|requests):' "$OUT/h2load.out"
callgrind_control --instr=off "$pid" >/dev/null
# callgrind writes its file when the server exits. Prism shuts down on SIGINT; the gRPC C++ peer
# ignores it under valgrind, so SIGTERM follows if it is still there after 20 s.
kill -INT "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true
trap - EXIT

# awk, not head, takes the top lines: head would stop reading, and under pipefail the SIGPIPE that
# callgrind_annotate then gets would end this script.
demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi; }
total="$(callgrind_annotate "$OUT/callgrind.out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
printf '\n%s %s: %s instructions for %s calls = %s per call (output in %s)\n' "$SERVER" \
  "$WORKLOAD" "$total" "$N" "$((total / N))" "$OUT"
printf '\n== top %s functions by own instructions ==\n' "$TOP"
callgrind_annotate --threshold=100 "$OUT/callgrind.out" | grep -E '^ *[0-9,]+ \(' | awk -v n="$TOP" 'NR <= n' \
  | demangle | cut -c1-220 | tee "$OUT/self.txt"
printf '\n== top %s functions by inclusive instructions ==\n' "$TOP"
callgrind_annotate --inclusive=yes --threshold=100 "$OUT/callgrind.out" | grep -E '^ *[0-9,]+ \(' \
  | awk -v n="$TOP" 'NR <= n' | demangle | cut -c1-220 | tee "$OUT/inclusive.txt"
