#!/usr/bin/env bash
# Runs every test of Prism, in the order that fails fastest: setup, generated code current, Swift
# build, Swift tests, the Python interop suite against the debug prism-server, the threaded suites
# under ThreadSanitizer (tools/tsan.sh), then a short run of every fuzz target (tools/fuzz.sh). CI runs this
# (through .ci/run); so can you, from anywhere. Stops at the first failing step and names it.
#
#   PRISM_SERVER_BIN   the server the interop suite starts (default: .build/debug/prism-server)
#   PYTEST_ADDOPTS     extra pytest arguments, e.g. "-k health -x" (read by pytest itself)
#   PRISM_FUZZ_SECONDS how long each fuzz target runs (default 20)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

started=$SECONDS
step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
fail() {
  printf '\ntools/test.sh: FAILED at step: %s\n' "$1" >&2
  [[ $# -gt 1 ]] && printf 'tools/test.sh: %s\n' "$2" >&2
  exit 1
}

step "setup (tools/setup.sh)"
bash tools/setup.sh || fail "setup" "tools/setup.sh could not install the build and test dependencies (see above)."

# The toolchain is not a Debian package; on our machines it lives in /opt/swift.
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

step "generated protobuf code is current (tools/gen-proto.sh --check)"
[[ -f tools/gen-proto.sh ]] || fail "gen-proto check" "tools/gen-proto.sh is missing."
bash tools/gen-proto.sh --check ||
  fail "gen-proto check" "Sources/PrismProtoC/generated does not match proto/: run tools/gen-proto.sh and commit the result."

step "built-in web console is current (tools/gen-console.sh --check)"
bash tools/gen-console.sh --check ||
  fail "gen-console check" "Sources/PrismServer/Console/ConsoleAssets.swift does not match console/: run tools/gen-console.sh and commit the result."

step "swift build (debug)"
swift build || fail "swift build" "the package does not compile (first error above)."

step "swift test"
swift test || fail "swift test" "a Swift test failed (see the XCTest / Swift Testing output above)."

step "interop suite (python3 -m pytest -q Tests/interop)"
server_bin="${PRISM_SERVER_BIN:-.build/debug/prism-server}"
[[ "$server_bin" == /* ]] || server_bin="$root/$server_bin"
[[ -x "$server_bin" ]] ||
  fail "interop suite" "no executable prism-server at $server_bin (swift build should have made it; or set PRISM_SERVER_BIN)."
export PRISM_SERVER_BIN="$server_bin"
# pytest exits 5 when it collected no test: that is a failure here too, like any other non-zero.
python3 -m pytest -q Tests/interop || fail "interop suite" "a Python interop test failed (summary above)."

# ThreadSanitizer over the suites where threads meet (RPC round trips, cancellation races, streaming,
# worker pool, hot reload), built in its own folder (.build-tsan) so .build stays as it is. Measured on
# a loaded 2-core machine: 8 to 15 minutes for the first (cold) build, then about 1 minute for the run.
step "ThreadSanitizer (tools/tsan.sh)"
bash tools/tsan.sh || fail "ThreadSanitizer" "a data race (report above) or a test failing under TSan."

# Last, as it rebuilds Prism's modules instrumented in .build (the dependencies are reused). Each of
# the 10 targets runs PRISM_FUZZ_SECONDS (default 20): 4.5 minutes in all on a 2-core machine, of
# which 1 to 3.5 for the instrumented build, depending on load.
step "fuzz smoke run (tools/fuzz.sh --seconds ${PRISM_FUZZ_SECONDS:-20})"
bash tools/fuzz.sh --seconds "${PRISM_FUZZ_SECONDS:-20}" --build-path .build ||
  fail "fuzz smoke run" "a fuzz target found a crash, hang, leak or memory blow-up: the reproducer and replay command are above."

step "all tests passed"
