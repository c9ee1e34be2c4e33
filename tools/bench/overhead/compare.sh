#!/usr/bin/env bash
# Compares two prism-server builds in one run, for issue 16's figures: run.sh with BASE_BIN and
# NEW_BIN (direct, base and new alternated round by round at 64, 512 and 4,096 streams, then
# idle streams through each), then, unless HEALTH=0, unary Health/Check of both builds against
# grpc-go (tools/bench/grpc/run.sh, SERVERS="base prism go", where "prism" is the new build).
# Each binary needs its libprism-plugin-openai.so beside it (copy both out of .build/release
# before rebuilding). Settings as run.sh (CONCURRENCIES, ROUNDS, DURATION, IDLE_STREAMS...),
# plus HEALTH_ROUNDS, HEALTH_N (Health/Check calls per run) and HEALTH_PORT_BASE (20700: below the
# ephemeral ports, which the runs before leave in use).
# Usage: BASE_BIN=A/prism-server NEW_BIN=B/prism-server compare.sh   (or compare.sh A/... B/...)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
usage="usage: BASE_BIN=A/prism-server NEW_BIN=B/prism-server compare.sh"
export BASE_BIN="${1:-${BASE_BIN:-}}" NEW_BIN="${2:-${NEW_BIN:-}}"
[[ -n "$BASE_BIN" && -n "$NEW_BIN" ]] || { echo "$usage" >&2; exit 2; }
HEALTH="${HEALTH:-1}"

"$BENCH_DIR/run.sh"

if [[ "$HEALTH" == 1 ]]; then
  GRPC="$BENCH_DIR/../grpc"
  [[ -x "$REPO/.build-bench/peers/go/go-peer" ]] || "$GRPC/build.sh" go
  echo
  SERVERS="base prism go" WORKLOADS=unary SKIP_BUILD=1 PRISM_SERVER_BIN="$NEW_BIN" PRISM_BASE_BIN="$BASE_BIN" \
    ROUNDS="${HEALTH_ROUNDS:-${ROUNDS:-3}}" UNARY_N="${HEALTH_N:-200000}" PORT_BASE="${HEALTH_PORT_BASE:-20700}" \
    "$GRPC/run.sh"
fi
