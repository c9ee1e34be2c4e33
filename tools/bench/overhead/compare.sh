#!/usr/bin/env bash
# Compares two prism-server builds on the gateway-overhead benchmark in the same period: run.sh
# with OLD, then NEW, PASSES times over, so that the machine's load falls on both. Each binary
# needs its libprism-plugin-openai.so beside it (copy both out of .build/release before
# rebuilding). Prints each run's table, then a summary of `added` TTFT/TTLT and CPU per request
# per build, from every pass. Settings as run.sh (CONCURRENCIES, ROUNDS, PORT_BASE...) plus PASSES
# and FIRST=new to run NEW first in each pass (a second comparison in the other order).
# Usage: compare.sh OLD/prism-server NEW/prism-server
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OLD="${1:?usage: compare.sh OLD/prism-server NEW/prism-server}"
NEW="${2:?usage: compare.sh OLD/prism-server NEW/prism-server}"
PASSES="${PASSES:-2}"
ORDER="old new"
[[ "${FIRST:-old}" == new ]] && ORDER="new old"

"$BENCH_DIR/build.sh" </dev/null >/dev/null 2>&1 || true  # the Go tools (PRISM_SERVER_BIN skips the Swift build)
export SKIP_BUILD=1
folders=()
for pass in $(seq "$PASSES"); do
  for build in $ORDER; do
    bin="$OLD"; [[ "$build" == new ]] && bin="$NEW"
    printf 'compare: pass %s, %s build (%s)\n' "$pass" "$build" "$bin" >&2
    PRISM_SERVER_BIN="$bin" "$BENCH_DIR/run.sh" >&2
    folder="$(ls -d "$BENCH_DIR/../../../.build-bench/overhead/results/"* | tail -1)"
    folders+=("$build=$folder")
  done
done
python3 "$BENCH_DIR/compare.py" "${folders[@]}"
