#!/usr/bin/env bash
# The gateway-overhead benchmark: the same load client streams generations from a fake OpenAI
# vendor (200 text deltas per answer) directly, and through a release prism-server to that same
# fake, at 1, 64 and 512 concurrent streams, direct and via Prism alternated round by round so
# that machine noise falls on both. Prints, per concurrency, p50/p99 time to first and last token
# both ways and what Prism adds, Prism's CPU per request, and how many connections the fake
# accepted per request. A tool run by hand, never by tests. Settings are environment variables.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
OUT="$REPO/.build-bench/overhead"

CONCURRENCIES="${CONCURRENCIES:-1 64 512}"
ROUNDS="${ROUNDS:-3}"                  # direct and via Prism, alternated, this many times each
DURATION="${DURATION:-10s}"            # measuring time of one run...
DURATION_SINGLE="${DURATION_SINGLE:-20s}" # ...and at concurrency 1, which completes few requests
WARMUP="${WARMUP:-2s}"                 # unmeasured start of every run (workers ramp up in 1 s)
DELTAS="${DELTAS:-200}"                # content deltas per answer
DELAY="${DELAY:-2ms}"                  # between deltas (see fake/main.go for why 2 ms)
MODEL="${MODEL:-gpt-4o-mini}"
PORT_BASE="${PORT_BASE:-50800}"        # fake on PORT_BASE+1, prism-server on PORT_BASE+2
PRISM_FLAGS="${PRISM_FLAGS:-}"         # extra prism-server flags, e.g. --plugin-worker-threads 32
SKIP_BUILD="${SKIP_BUILD:-0}"          # 1: use the binaries already built
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-}" # a prism-server to use instead of building one

log() { printf 'overhead: %s\n' "$*" >&2; }
die() { printf 'overhead: error: %s\n' "$*" >&2; exit 1; }

[[ "$SKIP_BUILD" == 1 ]] || PRISM_SERVER_BIN="$PRISM_SERVER_BIN" "$BENCH_DIR/build.sh"
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-$REPO/.build/release/prism-server}"
PLUGIN="$(dirname "$PRISM_SERVER_BIN")/libprism-plugin-openai.so"
[[ -x "$PRISM_SERVER_BIN" && -f "$PLUGIN" ]] || die "$PRISM_SERVER_BIN or $PLUGIN is missing"
[[ -x "$OUT/fake" && -x "$OUT/load" ]] || die "the Go tools are missing: run build.sh"

RESULTS="$OUT/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS/plugins"
# Only the OpenAI plugin, so that nothing else loads; the host refuses group-writable files.
install -m 0644 "$PLUGIN" "$RESULTS/plugins/"
chmod 0755 "$RESULTS/plugins"

FAKE_PORT=$((PORT_BASE + 1))
PRISM_PORT=$((PORT_BASE + 2))
KEY="bench-key"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$FAKE_PORT" "$PRISM_PORT"; do
  port_open "$port" && die "port $port is already in use; set PORT_BASE"
done

PIDS=()
stop() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
wait_listening() {  # port name log
  for _ in $(seq 300); do port_open "$1" && return 0; sleep 0.1; done
  die "$2 did not start listening on $1 (see $3)"
}

"$OUT/fake" --port "$FAKE_PORT" --deltas "$DELTAS" --delay "$DELAY" --key "$KEY" >"$RESULTS/fake.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
wait_listening "$FAKE_PORT" fake "$RESULTS/fake.log"
# shellcheck disable=SC2086 # PRISM_FLAGS is split into words on purpose
OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" PRISM_PLUGIN_PATH="$RESULTS/plugins" \
  "$PRISM_SERVER_BIN" --listen "127.0.0.1:$PRISM_PORT" --log-level warning $PRISM_FLAGS \
  >"$RESULTS/prism.log" 2>&1 &
PRISM_PID=$!
PIDS+=("$PRISM_PID")
wait_listening "$PRISM_PORT" prism-server "$RESULTS/prism.log"
log "fake on :$FAKE_PORT (pid $FAKE_PID), prism-server on :$PRISM_PORT (pid $PRISM_PID); results in $RESULTS"

address() { if [[ "$1" == direct ]]; then echo "127.0.0.1:$FAKE_PORT"; else echo "127.0.0.1:$PRISM_PORT"; fi; }
load() {  # target, then load-client flags
  local target="$1"; shift
  "$OUT/load" --target "$target" --addr "$(address "$target")" --model "$MODEL" --key "$KEY" \
    --expect-tokens "$DELTAS" "$@"
}

# --- Both paths answer in full before anything is timed. ------------------------------------------
for target in direct prism; do
  summary="$(load "$target" --concurrency 1 --requests 3 --warmup 0s --ramp 0s)" \
    || die "$target: the load client failed"
  grep -q '"errors":0,' <<<"$summary" && grep -q '"ok":3,' <<<"$summary" \
    || die "$target does not answer with $DELTAS text deltas: $summary"
done
log "direct and via Prism both stream $DELTAS text deltas per answer"

# --- Counters read around each run. ---------------------------------------------------------------
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
fake_stat() { curl -s "http://127.0.0.1:$FAKE_PORT/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["connections_accepted"], s["requests"])'; }

printf 'concurrency\tround\ttarget\tprism_ticks\tfake_ticks\tbusy_ticks\ttotal_ticks\tconnections\tfake_requests\n' >"$RESULTS/runs.tsv"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for concurrency in $CONCURRENCIES; do
  duration="$DURATION"
  [[ "$concurrency" == 1 ]] && duration="$DURATION_SINGLE"
  for round in $(seq "$ROUNDS"); do
    for target in direct prism; do
      name="c$concurrency.r$round.$target"
      read -r conns0 requests0 <<<"$(fake_stat)"
      prism0="$(ticks "$PRISM_PID")" fake0="$(ticks "$FAKE_PID")"
      read -r busy0 total0 <<<"$(machine_ticks)"
      load "$target" --concurrency "$concurrency" --duration "$duration" --warmup "$WARMUP" \
        --samples "$RESULTS/$name.samples" >"$RESULTS/$name.json" 2>"$RESULTS/$name.err" \
        || die "load client failed: see $RESULTS/$name.err"
      read -r busy1 total1 <<<"$(machine_ticks)"
      prism1="$(ticks "$PRISM_PID")" fake1="$(ticks "$FAKE_PID")"
      read -r conns1 requests1 <<<"$(fake_stat)"
      # The /stats request itself is one connection.
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$concurrency" "$round" "$target" \
        $((prism1 - prism0)) $((fake1 - fake0)) $((busy1 - busy0)) $((total1 - total0)) \
        $((conns1 - conns0 - 1)) $((requests1 - requests0)) >>"$RESULTS/runs.tsv"
      log "$name: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%d ok, %d errors, TTFT p50 %.2f ms, TTLT p50 %.1f ms" % (s["ok"], s["errors"], (s["ttft_ms"] or {}).get("p50", 0), (s["ttlt_ms"] or {}).get("p50", 0)))' "$RESULTS/$name.json")"
    done
  done
done

cat >"$RESULTS/meta.env" <<META
concurrencies="$CONCURRENCIES"
rounds=$ROUNDS
duration="$DURATION (concurrency 1: $DURATION_SINGLE), warm-up $WARMUP"
answer="$DELTAS deltas, $DELAY apart"
prism="$PRISM_SERVER_BIN $PRISM_FLAGS"
cores=$(nproc)
clock_ticks=$(getconf CLK_TCK)
load_start="$load_start"
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
META
python3 "$BENCH_DIR/report.py" "$RESULTS" | tee "$RESULTS/report.txt"
