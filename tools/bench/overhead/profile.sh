#!/usr/bin/env bash
# Profiles where Prism's added CPU goes on the gateway-overhead workload: a release prism-server
# (and its OpenAI plugin) under valgrind's callgrind, which counts instructions, so the numbers
# repeat however busy the machine is. The fake vendor and the load client run natively; counting
# starts once the server is ready. Prints instructions per request and per text delta, and the
# top functions by own and by inclusive instructions. Run run.sh (or build.sh) first.
# Settings: N requests (default 64) at CONCURRENCY (default 8), DELTAS, PORT_BASE, TOP.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
OUT_DIR="$REPO/.build-bench/overhead"
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-$REPO/.build/release/prism-server}"
N="${N:-64}"
CONCURRENCY="${CONCURRENCY:-8}"
DELTAS="${DELTAS:-200}"
PORT_BASE="${PORT_BASE:-50850}"
TOP="${TOP:-40}"
KEY="bench-key"

die() { printf 'profile: error: %s\n' "$*" >&2; exit 1; }
[[ -x "$PRISM_SERVER_BIN" && -x "$OUT_DIR/fake" && -x "$OUT_DIR/load" ]] \
  || die "prism-server or the Go tools are missing: run tools/bench/overhead/build.sh"

OUT="$OUT_DIR/profiles/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT/plugins"
chmod 0755 "$OUT/plugins"
# valgrind 3.19 cannot read Swift 6's DWARF 5: profile copies without debug info (function names
# come from the symbol tables). The host refuses plugin files that others can write to.
strip --strip-debug -o "$OUT/prism-server" "$PRISM_SERVER_BIN"
strip --strip-debug -o "$OUT/plugins/libprism-plugin-openai.so" "$(dirname "$PRISM_SERVER_BIN")/libprism-plugin-openai.so"
chmod 0644 "$OUT/plugins/libprism-plugin-openai.so"
cc -O2 -shared -fPIC -o "$OUT/sigsuspend-shim.so" "$BENCH_DIR/../grpc/valgrind-sigsuspend-shim.c"

FAKE_PORT=$((PORT_BASE + 1))
PRISM_PORT=$((PORT_BASE + 2))
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
"$OUT_DIR/fake" --port "$FAKE_PORT" --deltas "$DELTAS" --key "$KEY" >"$OUT/fake.log" 2>&1 &
fake_pid=$!
OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" PRISM_PLUGIN_PATH="$OUT/plugins" \
  LD_PRELOAD="$OUT/sigsuspend-shim.so" valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT/callgrind.out" \
  "$OUT/prism-server" --listen "127.0.0.1:$PRISM_PORT" --log-level warning >"$OUT/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" "$fake_pid" 2>/dev/null || true' EXIT
for _ in $(seq 600); do port_open "$PRISM_PORT" && break; sleep 0.1; done
port_open "$PRISM_PORT" || die "prism-server did not start under valgrind (see $OUT/server.log)"

load() { "$OUT_DIR/load" --target prism --addr "127.0.0.1:$PRISM_PORT" --key "$KEY" --expect-tokens "$DELTAS" \
  --warmup 0s --ramp 0s --timeout 600s "$@"; }
load --concurrency 1 --requests 2 >/dev/null  # first calls: lazy set-up stays out of the profile
callgrind_control --instr=on "$pid" >/dev/null
load --concurrency "$CONCURRENCY" --requests "$N" | tee "$OUT/load.json"
callgrind_control --instr=off "$pid" >/dev/null
kill -INT "$pid"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi; }
total="$(callgrind_annotate "$OUT/callgrind.out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
completed="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed_ok"])' "$OUT/load.json")"
printf '\nprism Generate: %s instructions for %s requests = %s per request, %s per text delta (output in %s)\n' \
  "$total" "$completed" "$((total / completed))" "$((total / completed / DELTAS))" "$OUT"
printf '\n== top %s functions by own instructions ==\n' "$TOP"
callgrind_annotate --threshold=100 "$OUT/callgrind.out" | grep -E '^ *[0-9,]+ \(' | awk -v n="$TOP" 'NR <= n' \
  | demangle | cut -c1-220 | tee "$OUT/self.txt"
printf '\n== top %s functions by inclusive instructions ==\n' "$TOP"
callgrind_annotate --inclusive=yes --threshold=100 "$OUT/callgrind.out" | grep -E '^ *[0-9,]+ \(' \
  | awk -v n="$TOP" 'NR <= n' | demangle | cut -c1-220 | tee "$OUT/inclusive.txt"
