#!/usr/bin/env bash
# The gateway-overhead benchmark: the same load client streams generations from a fake OpenAI
# vendor (200 text deltas per answer) directly, and through one or two release prism-servers to
# that same fake, at 64, 512 and 4,096 concurrent streams, the targets alternated round by round
# so that machine noise falls on all. Then holds idle streams open through each build to weigh
# them. Prints, per concurrency and target, TTFT/TTLT p50/p99 and what each build adds, answers/s
# and the ratio to direct, Prism's CPU per answer and per delta and its threads; then memory per
# idle stream. A tool run by hand, never by tests. Settings are environment variables:
#   BASE_BIN=A/prism-server NEW_BIN=B/prism-server run.sh   two builds (compare.sh runs this)
#   PRISM_SERVER_BIN=A/prism-server run.sh                   one build ("prism"); built if unset
#   VENDOR_TLS=1 run.sh   the fake serves HTTPS (HTTP/2 to Prism, whose curl offers it; HTTP/1.1
#                         to the direct client, as the vendors' SDKs use) with a CA made per run;
#                         DIRECT_HTTP2=1 has the direct client speak HTTP/2 too (one connection)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
OUT="$REPO/.build-bench/overhead"

CONCURRENCIES="${CONCURRENCIES:-64 512 4096}"
ROUNDS="${ROUNDS:-3}"                  # every target, alternated, this many times per concurrency
DURATION="${DURATION:-10s}"            # measuring time of one run...
DURATION_SINGLE="${DURATION_SINGLE:-20s}" # ...and at concurrency 1, which completes few requests
WARMUP="${WARMUP:-2s}"                 # unmeasured start of every run (workers ramp up in 1 s)
DELTAS="${DELTAS:-200}"                # content deltas per answer
DELAY="${DELAY:-2ms}"                  # between deltas (see fake/main.go for why 2 ms)
IDLE_STREAMS="${IDLE_STREAMS:-1000}"   # idle streams held open per build to weigh them (0: skip)
IDLE_WAIT="${IDLE_WAIT:-60}"           # seconds allowed for all of them to reach the vendor
MODEL="${MODEL:-gpt-4o-mini}"
# Below Linux's ephemeral ports (32768 up): thousands of client connections per run take those,
# and one still closing on a server's port makes its bind fail.
PORT_BASE="${PORT_BASE:-20800}"        # fake +1, servers +2 up; the idle phase's fake +8, server +9
PRISM_FLAGS="${PRISM_FLAGS:-}"         # extra flags of every prism-server, e.g. --plugin-worker-threads 32
BASE_FLAGS="${BASE_FLAGS:-}"           # ...of the base build only
NEW_FLAGS="${NEW_FLAGS:-}"             # ...of the new build only
SKIP_BUILD="${SKIP_BUILD:-0}"          # 1: use the binaries already built
PRISM_SERVER_BIN="${PRISM_SERVER_BIN:-}" # one prism-server to use instead of building one
BASE_BIN="${BASE_BIN:-}"               # two prism-servers to compare (each with its
NEW_BIN="${NEW_BIN:-}"                 # libprism-plugin-openai.so in the same folder)
VENDOR_TLS="${VENDOR_TLS:-0}"          # 1: the fake vendor speaks HTTPS
DIRECT_HTTP2="${DIRECT_HTTP2:-0}"      # 1 (with VENDOR_TLS=1): the direct client uses HTTP/2

log() { printf 'overhead: %s\n' "$*" >&2; }
die() { printf 'overhead: error: %s\n' "$*" >&2; exit 1; }

# --- The builds under test: name -> binary, each with the OpenAI plugin beside it. ----------------
BUILDS=()
declare -A BIN FLAGS PORT PID
if [[ -n "$BASE_BIN$NEW_BIN" ]]; then
  [[ -n "$BASE_BIN" && -n "$NEW_BIN" ]] || die "give both BASE_BIN and NEW_BIN"
  BUILDS=(base new)
  BIN=([base]="$BASE_BIN" [new]="$NEW_BIN")
  FLAGS=([base]="$PRISM_FLAGS $BASE_FLAGS" [new]="$PRISM_FLAGS $NEW_FLAGS")
  SKIP_BUILD=1
  "$BENCH_DIR/build.sh" go
else
  [[ "$SKIP_BUILD" == 1 ]] || PRISM_SERVER_BIN="$PRISM_SERVER_BIN" "$BENCH_DIR/build.sh"
  BUILDS=(prism)
  BIN=([prism]="${PRISM_SERVER_BIN:-$REPO/.build/release/prism-server}")
  FLAGS=([prism]="$PRISM_FLAGS")
fi
for build in "${BUILDS[@]}"; do
  [[ -x "${BIN[$build]}" && -f "$(dirname "${BIN[$build]}")/libprism-plugin-openai.so" ]] \
    || die "${BIN[$build]} or the libprism-plugin-openai.so beside it is missing"
done
[[ -x "$OUT/fake" && -x "$OUT/load" ]] || die "the Go tools are missing: run build.sh"

# Every stream is a socket at the client, at the server and (via Prism) at the vendor side.
max_concurrency=$(tr ' ' '\n' <<<"$CONCURRENCIES $IDLE_STREAMS" | sort -n | tail -1)
need_files=$((2 * max_concurrency + 1024))
if (($(ulimit -n) < need_files)); then
  ulimit -n "$need_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  (($(ulimit -n) >= need_files)) || die "$max_concurrency streams need $need_files open files; the hard limit is $(ulimit -Hn)"
fi

RESULTS="$OUT/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"

# --- The vendor's scheme: HTTP, or HTTPS under a CA of this run (EC keys, an IP name). ----------
SCHEME=http
FAKE_TLS=()
FAKE_CURL=(curl -s)
LOAD_TLS=()
PRISM_TLS=()
if [[ "$VENDOR_TLS" == 1 ]]; then
  tls="$RESULTS/tls"
  mkdir -p "$tls"
  key_args=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  { openssl req -x509 "${key_args[@]}" -days 2 -subj "/CN=overhead bench CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
      && openssl req "${key_args[@]}" -subj "/CN=127.0.0.1" -keyout "$tls/fake.key" -out "$tls/fake.csr" \
      && openssl x509 -req -in "$tls/fake.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 -out "$tls/fake.pem" \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n'); } 2>"$tls/openssl.log" \
    || die "cannot make the fake's certificate (see $tls/openssl.log)"
  SCHEME=https
  FAKE_TLS=(--tls-cert "$tls/fake.pem" --tls-key "$tls/fake.key")
  FAKE_CURL=(curl -s --cacert "$tls/ca.pem")
  LOAD_TLS=(--vendor-ca "$tls/ca.pem")
  [[ "$DIRECT_HTTP2" == 1 ]] && LOAD_TLS+=(--vendor-http2)
  PRISM_TLS=(SSL_CERT_FILE="$tls/ca.pem")
fi

FAKE_PORT=$((PORT_BASE + 1))
IDLE_FAKE_PORT=$((PORT_BASE + 8))
IDLE_PRISM_PORT=$((PORT_BASE + 9))
KEY="bench-key"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
index=0
for build in "${BUILDS[@]}"; do PORT[$build]=$((PORT_BASE + 2 + index)); index=$((index + 1)); done
for port in "$FAKE_PORT" "${PORT[@]}" "$IDLE_FAKE_PORT" "$IDLE_PRISM_PORT"; do
  port_open "$port" && die "port $port is already in use; set PORT_BASE"
done

PIDS=()
stop() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
stop_one() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_listening() {  # port name log
  for _ in $(seq 300); do port_open "$1" && return 0; sleep 0.1; done
  die "$2 did not start listening on $1 (see $3)"
}
# start_fake PORT LOG [flags]: sets STARTED.
start_fake() {
  local port="$1" out="$2"; shift 2
  "$OUT/fake" --port "$port" --deltas "$DELTAS" --delay "$DELAY" --key "$KEY" "${FAKE_TLS[@]}" "$@" >"$out" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_listening "$port" fake "$out"
}
# start_prism BUILD PORT FAKE_PORT LOG: sets STARTED. Its plugin folder holds only the OpenAI
# plugin, so that nothing else loads; the host refuses group-writable files.
start_prism() {
  local build="$1" port="$2" fake_port="$3" out="$4" plugins="$RESULTS/plugins-$1"
  mkdir -p "$plugins"
  install -m 0644 "$(dirname "${BIN[$build]}")/libprism-plugin-openai.so" "$plugins/"
  chmod 0755 "$plugins"
  # shellcheck disable=SC2086 # the flags are split into words on purpose
  # A data folder of its own: two servers sharing one would have their batches turned off.
  mkdir -p "$RESULTS/data-$build"
  env "${PRISM_TLS[@]}" OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="$SCHEME://127.0.0.1:$fake_port/v1" PRISM_PLUGIN_PATH="$plugins" PRISM_DATA_DIR="$RESULTS/data-$build" \
    "${BIN[$build]}" --listen "127.0.0.1:$port" --log-level warning ${FLAGS[$build]} >"$out" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_listening "$port" "prism-server ($build)" "$out"
}

start_fake "$FAKE_PORT" "$RESULTS/fake.log"
FAKE_PID=$STARTED
for build in "${BUILDS[@]}"; do
  start_prism "$build" "${PORT[$build]}" "$FAKE_PORT" "$RESULTS/prism-$build.log"
  PID[$build]=$STARTED
  log "$build: ${BIN[$build]} on :${PORT[$build]} (pid ${PID[$build]})"
done
log "fake on :$FAKE_PORT (pid $FAKE_PID); results in $RESULTS"

load() {  # target address, then load-client flags
  "$OUT/load" --target "$1" --addr "$2" --model "$MODEL" --key "$KEY" --expect-tokens "$DELTAS" "${@:3}"
}
load_target() {  # direct or a build, then load-client flags
  if [[ "$1" == direct ]]; then load direct "127.0.0.1:$FAKE_PORT" "${LOAD_TLS[@]}" "${@:2}"
  else load prism "127.0.0.1:${PORT[$1]}" --watch-pid "${PID[$1]}" "${@:2}"; fi
}
check_answers() {  # name, then load-client flags: three answers in full or die
  local summary
  summary="$(load "${@:2}" --concurrency 1 --requests 3 --warmup 0s --ramp 0s)" || die "$1: the load client failed"
  grep -q '"errors":0,' <<<"$summary" && grep -q '"ok":3,' <<<"$summary" \
    || die "$1 does not answer with $DELTAS text deltas: $summary"
}
fake_stat() {  # port, then /stats keys: their values
  "${FAKE_CURL[@]}" "$SCHEME://127.0.0.1:$1/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(*(s[k] for k in sys.argv[1:]))' "${@:2}"
}
# await_open PORT COUNT SECONDS: polls the fake until COUNT streams are open there; false when
# the deadline passes first.
await_open() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    [[ "$(fake_stat "$1" streams_open)" == "$2" ]] && return 0
    sleep 0.2
  done
  return 1
}

# --- Every path answers in full before anything is timed. -----------------------------------------
check_answers direct direct "127.0.0.1:$FAKE_PORT" "${LOAD_TLS[@]}"
for build in "${BUILDS[@]}"; do check_answers "$build" prism "127.0.0.1:${PORT[$build]}"; done
log "direct and via ${BUILDS[*]} all stream $DELTAS text deltas per answer"

# --- Counters read around each run. ---------------------------------------------------------------
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A server's CPU ticks by thread name, the name's number dropped (prism-io-0 and prism-io-1 are
# prism-io; NIO-ELT-1-#2 is NIO-ELT): NAME<tab>TICKS lines. A thread that ends between two reads
# loses its ticks (the host's threads are long-lived; Swift's global executor may retire some).
thread_ticks() {
  for task in /proc/"$1"/task/*; do
    printf '%s\t%s\n' "$(sed -E 's/[-#0-9]+$//' "$task/comm")" "$(awk '{print $14 + $15}' "$task/stat")"
  done 2>/dev/null | awk -F'\t' '{t[$1] += $2} END {for (n in t) printf "%s\t%d\n", n, t[n]}' | sort
}
servers_ticks() { local t=0; for build in "${BUILDS[@]}"; do t=$((t + $(ticks "${PID[$build]}"))); done; echo "$t"; }
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

TARGETS=(direct "${BUILDS[@]}")
printf 'concurrency\tround\ttarget\tservers_ticks\tfake_ticks\tbusy_ticks\ttotal_ticks\tconnections\tfake_requests\n' >"$RESULTS/runs.tsv"
printf 'concurrency\tround\ttarget\tthread\tticks\n' >"$RESULTS/threads.tsv"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for concurrency in $CONCURRENCIES; do
  duration="$DURATION"
  [[ "$concurrency" == 1 ]] && duration="$DURATION_SINGLE"
  for round in $(seq "$ROUNDS"); do
    # Each round starts one target later, so that no target always follows the same one.
    for step in $(seq 0 $((${#TARGETS[@]} - 1))); do
      target="${TARGETS[$(((round - 1 + step) % ${#TARGETS[@]}))]}"
      name="c$concurrency.r$round.$target"
      # A run starts on a quiet vendor: the streams of the previous one have all ended.
      await_open "$FAKE_PORT" 0 30 || log "warning: streams of the previous run still open at the fake"
      read -r conns0 requests0 <<<"$(fake_stat "$FAKE_PORT" connections_accepted requests)"
      servers0="$(servers_ticks)" fake0="$(ticks "$FAKE_PID")"
      read -r busy0 total0 <<<"$(machine_ticks)"
      [[ "$target" == direct ]] || thread_ticks "${PID[$target]}" >"$RESULTS/$name.threads0"
      load_target "$target" --concurrency "$concurrency" --duration "$duration" --warmup "$WARMUP" \
        --samples "$RESULTS/$name.samples" >"$RESULTS/$name.json" 2>"$RESULTS/$name.err" \
        || die "load client failed: see $RESULTS/$name.err"
      read -r busy1 total1 <<<"$(machine_ticks)"
      if [[ "$target" != direct ]]; then
        thread_ticks "${PID[$target]}" | join -t $'\t' -a 1 -e 0 -o 0,1.2,2.2 - "$RESULTS/$name.threads0" \
          | awk -F'\t' -v prefix="$concurrency\t$round\t$target" '{printf "%s\t%s\t%d\n", prefix, $1, $2 - $3}' >>"$RESULTS/threads.tsv"
      fi
      servers1="$(servers_ticks)" fake1="$(ticks "$FAKE_PID")"
      read -r conns1 requests1 <<<"$(fake_stat "$FAKE_PORT" connections_accepted requests)"
      # The first /stats request is one connection.
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$concurrency" "$round" "$target" \
        $((servers1 - servers0)) $((fake1 - fake0)) $((busy1 - busy0)) $((total1 - total0)) \
        $((conns1 - conns0 - 1)) $((requests1 - requests0)) >>"$RESULTS/runs.tsv"
      log "$name: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%d ok, %d errors, TTFT p50 %.2f ms, TTLT p50 %.1f ms" % (s["ok"], s["errors"], (s["ttft_ms"] or {}).get("p50", 0), (s["ttlt_ms"] or {}).get("p50", 0)))' "$RESULTS/$name.json")"
    done
  done
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
for build in "${BUILDS[@]}"; do stop_one "${PID[$build]}"; done
stop_one "$FAKE_PID"

# --- Idle streams: what one costs a fresh server, each build in turn. ----------------------------
# A fresh fake and server per build, so that neither the heap grown by the runs above nor
# streams a build failed to cancel blur the figure. After a few full answers (plugin and
# connections warmed), the fake starts holding every answer before its first text; the client
# opens IDLE_STREAMS streams; once all are open at the vendor, RSS and threads are read again.
status_of() { awk '/^Threads:/{t=$2} /^VmRSS:/{r=$2} END{print t, r}' "/proc/$1/status"; }
printf 'build\tstreams\topen\tthreads_before\trss_before_kib\tthreads_during\trss_during_kib\n' >"$RESULTS/idle.tsv"
if ((IDLE_STREAMS > 0)); then
  for build in "${BUILDS[@]}"; do
    start_fake "$IDLE_FAKE_PORT" "$RESULTS/idle-fake-$build.log"
    fake_pid=$STARTED
    start_prism "$build" "$IDLE_PRISM_PORT" "$IDLE_FAKE_PORT" "$RESULTS/idle-prism-$build.log"
    prism_pid=$STARTED
    check_answers "$build (idle phase)" prism "127.0.0.1:$IDLE_PRISM_PORT"
    "${FAKE_CURL[@]}" -f -X POST "$SCHEME://127.0.0.1:$IDLE_FAKE_PORT/first-delay?d=1h" || die "the fake refused /first-delay"
    read -r threads0 rss0 <<<"$(status_of "$prism_pid")"
    load prism "127.0.0.1:$IDLE_PRISM_PORT" --concurrency "$IDLE_STREAMS" --requests "$IDLE_STREAMS" \
      --warmup 0s --ramp 1s --timeout 1h >/dev/null 2>"$RESULTS/idle-load-$build.err" &
    load_pid=$!
    PIDS+=("$load_pid")
    await_open "$IDLE_FAKE_PORT" "$IDLE_STREAMS" "$IDLE_WAIT" \
      || log "warning: $build: only $(fake_stat "$IDLE_FAKE_PORT" streams_open) of $IDLE_STREAMS streams reached the vendor in ${IDLE_WAIT}s"
    open="$(fake_stat "$IDLE_FAKE_PORT" streams_open)"
    read -r threads1 rss1 <<<"$(status_of "$prism_pid")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$build" "$IDLE_STREAMS" "$open" "$threads0" "$rss0" "$threads1" "$rss1" >>"$RESULTS/idle.tsv"
    log "$build: $open idle streams open: RSS $rss0 -> $rss1 KiB, threads $threads0 -> $threads1"
    stop_one "$load_pid"
    stop_one "$prism_pid"
    stop_one "$fake_pid"
  done
fi

{
  echo "concurrencies=\"$CONCURRENCIES\""
  echo "rounds=$ROUNDS"
  echo "duration=\"$DURATION (concurrency 1: $DURATION_SINGLE), warm-up $WARMUP\""
  echo "answer=\"$DELTAS deltas, $DELAY apart, over ${SCHEME^^}$([[ "$DIRECT_HTTP2" == 1 ]] && echo " (direct: HTTP/2)")\""
  echo "deltas=$DELTAS"
  echo "builds=\"${BUILDS[*]}\""
  for build in "${BUILDS[@]}"; do echo "bin_$build=\"${BIN[$build]} ${FLAGS[$build]}\""; done
  echo "cores=$(nproc)"
  echo "clock_ticks=$(getconf CLK_TCK)"
  echo "load_start=\"$load_start\""
  echo "load_end=\"$load_end\""
} >"$RESULTS/meta.env"
python3 "$BENCH_DIR/report.py" "$RESULTS" | tee "$RESULTS/report.txt"
