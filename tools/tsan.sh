#!/usr/bin/env bash
# Builds the Swift tests with ThreadSanitizer (in their own scratch folder, so .build is untouched)
# and runs the suites that cross threads: RPC round trips, cancellation races, streaming, the worker
# pool and hot reload. Exits 1 on any data race (the report is printed); tools/test.sh runs it in CI.
#
#   tools/tsan.sh [--build-path DIR] [suite...]   (default .build-tsan; default suites below)
#
# Suppressions (tools/tsan.supp) are only for races inside third-party or system libraries, never
# for Prism's own code.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

build_path=.build-tsan
suites=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-path) build_path="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tools/tsan.sh: unknown option $1" >&2; exit 2 ;;
    *) suites+=("$1"); shift ;;
  esac
done
# The suites where threads meet: the hand-off type, the RPC layer's round trips and connection life
# cycle, and the providers' cancellation races, streamed input, worker pool, hot reload, end-to-end
# Generate, and the host I/O loops (a non-blocking C plugin's exchanges, pauses and cancels: Swift
# plugins cannot load into a TSan process, their instrumentation needs runtime symbols, such as
# __tsan_external_write, that the test executable does not export).
[[ ${#suites[@]} -gt 0 ]] || suites=(
  PrismHandOffTests.HandOffTests
  PrismRPCTests.RPCRoundTripTests
  PrismRPCTests.ConnectionLifetimeTests
  PrismRPCTests.EventLoopTaskExecutorTests
  PrismProvidersTests.CancelRaceTests
  PrismProvidersTests.StreamedInputTests
  PrismProvidersTests.WorkerPoolTests
  PrismProvidersTests.HotReloadTests
  PrismProvidersTests.GenerateEndToEndTests
  PrismProvidersTests.NonBlockingPluginTests
)

# Swift 6.3 under -sanitize=thread rejects swift-otel 1.6.0 (OTelBatchSpanProcessor/LogRecordProcessor:
# "sending 'logger' risks causing data races", which a plain build accepts: the sanitizer's access
# markers change the region analysis). Swift 5 language mode for every module, as Prism's own modules
# already use, makes that diagnostic a warning; the generated code and its instrumentation are the same.
flags=(-c debug --sanitize=thread --scratch-path "$build_path" -Xswiftc -swift-version -Xswiftc 5)
echo "tools/tsan.sh: building the tests with ThreadSanitizer in $build_path"
built=$SECONDS
swift build --build-tests "${flags[@]}" || { echo "tools/tsan.sh: the TSan build failed (first error above)" >&2; exit 1; }
echo "tools/tsan.sh: built in $((SECONDS - built)) s"

# halt_on_error: the first race stops the run with its report; second_deadlock_stack: both stacks of
# a lock-order inversion. The report goes to stderr and also to $log for the summary below.
log_dir="$build_path/tsan-logs"
mkdir -p "$log_dir"
rm -f "$log_dir"/report*
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$root/tools/tsan.supp:print_suppressions=0:log_path=$root/$log_dir/report}"

filters=()
for suite in "${suites[@]}"; do filters+=(--filter "^$suite/"); done
ran=$SECONDS
set +e
swift test --skip-build "${flags[@]}" "${filters[@]}"
status=$?
set -e
echo "tools/tsan.sh: ran in $((SECONDS - ran)) s"

reports=("$log_dir"/report*)
if [[ -e "${reports[0]}" ]]; then
  for report in "${reports[@]}"; do echo "--- $report"; cat "$report"; done
  echo "tools/tsan.sh: ThreadSanitizer reported (above; also in $log_dir)" >&2
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "tools/tsan.sh: a test failed under ThreadSanitizer (exit $status, see above)" >&2
  exit 1
fi
echo "tools/tsan.sh: no data races in ${#suites[@]} suites"
