#!/usr/bin/env bash
# Builds `prism-fuzz` (libFuzzer + AddressSanitizer on Prism's own modules, PRISM_FUZZ=1 in
# Package.swift) and runs fuzz targets (Sources/PrismFuzz) from the seeds in fuzz/corpus/<target>,
# reporting executions, executions per second and findings. Exits 1 when a target found a crash,
# a hang, a leak or unbounded memory, naming the reproducer; tools/test.sh runs it briefly in CI.
#
#   tools/fuzz.sh [--seconds N] [--build-path DIR] [--list] [target...]   (default: every target, 60 s each)
#
#   --build-path DIR  SwiftPM scratch folder (default .build: the dependencies of the debug build are
#                     reused, and Prism's modules are rebuilt instrumented, so the next plain `swift build`
#                     rebuilds them again; give another folder to keep both, at the cost of building NIO twice)
# New inputs libFuzzer finds go to $PRISM_FUZZ_WORK/corpus/<target> (default .build/fuzz-work), never
# into fuzz/corpus; reproducers to $PRISM_FUZZ_WORK/findings. Replay one:
#   PRISM_FUZZ_TARGET=<target> <build-path>/debug/prism-fuzz <reproducer>
# and commit it under fuzz/regressions/<target>/ with the fix (PrismFuzzTests replays them).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

seconds=60
build_path=.build
list=false
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-path) build_path="$2"; shift 2 ;;
    --list) list=true; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tools/fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "tools/fuzz.sh: --seconds takes a positive whole number" >&2; exit 2; }

all_targets=(); for dir in fuzz/corpus/*/; do all_targets+=("$(basename "$dir")"); done
if $list; then printf '%s\n' "${all_targets[@]}"; exit 0; fi
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  [[ -d "fuzz/corpus/$target" ]] || { echo "tools/fuzz.sh: no target '$target' (targets: ${all_targets[*]})" >&2; exit 2; }
done

# libFuzzer without its main (SwiftPM gives every executable its own), from the toolchain's clang.
toolchain="$(dirname "$(readlink -f "$(command -v swift)")")/.."
runtime="$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | tail -1)"
[[ -f "$runtime" ]] || { echo "tools/fuzz.sh: no libclang_rt.fuzzer_no_main in the Swift toolchain at $toolchain" >&2; exit 1; }

echo "tools/fuzz.sh: building prism-fuzz in $build_path"
built=$SECONDS
PRISM_FUZZ=1 PRISM_FUZZ_RUNTIME="$runtime" swift build --product prism-fuzz --scratch-path "$build_path" 2>&1 | grep -v "Cannot export local symbol" ||
  { echo "tools/fuzz.sh: the fuzz build failed (first error above)" >&2; exit 1; }
binary="$build_path/debug/prism-fuzz"
[[ -x "$binary" ]] || { echo "tools/fuzz.sh: no $binary after the build" >&2; exit 1; }
echo "tools/fuzz.sh: built in $((SECONDS - built)) s"

work="${PRISM_FUZZ_WORK:-.build/fuzz-work}"
mkdir -p "$work/findings" "$work/logs"
# Leaks are findings; Swift's and the media libraries' caches stay reachable, so they are not.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}"
# Per input: 10 s is a hang (the media time budgets are 5 s); 2 GiB of RSS or a 512 MiB malloc is
# unbounded memory (the targets' limits allow far less).
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536
       -print_final_stats=1)

failed=()
printf '\n%-12s %8s %12s %10s  %s\n' target seconds executions 'exec/s' findings
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus"
  log="$work/logs/$target.log"
  started=$SECONDS
  # The first folder collects what libFuzzer finds; the committed seeds are read, never written.
  set +e
  PRISM_FUZZ_TARGET="$target" "$binary" "${flags[@]}" -artifact_prefix="$work/findings/$target-" \
    "$corpus" "fuzz/corpus/$target" >"$log" 2>&1
  status=$?
  set -e
  elapsed=$((SECONDS - started))
  runs=$( (grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" || true) | grep -o '[0-9]*$' | tail -1 || true)
  runs=${runs:-0}
  rate=$(( elapsed > 0 ? runs / elapsed : runs ))
  artifact=$( (grep -o "Test unit written to [^ ]*" "$log" || true) | tail -1 | sed 's/Test unit written to //')
  if [[ $status -ne 0 || -n "$artifact" ]]; then
    finding="$( (grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+[^(]*|Fatal error: .*|fuzz invariant broken: .*' "$log" || true) | head -c 160)"
    printf '%-12s %8s %12s %10s  %s\n' "$target" "$elapsed" "$runs" "$rate" "FOUND: ${finding:-exit $status}"
    echo "             reproducer: ${artifact:-none written} (log: $log)"
    echo "             replay:     PRISM_FUZZ_TARGET=$target $binary ${artifact:-<input>}"
    # CI keeps only the output: a small reproducer is printed too (base64 -d > file to get it back).
    if [[ -n "$artifact" && -f "$artifact" && $(stat -c %s "$artifact") -le 8192 ]]; then
      echo "             base64:     $(base64 -w0 "$artifact")"
    fi
    tail -n 40 "$log" | sed 's/^/             | /'

    failed+=("$target")
  else
    printf '%-12s %8s %12s %10s  %s\n' "$target" "$elapsed" "$runs" "$rate" none
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "tools/fuzz.sh: findings in: ${failed[*]} (logs in $work/logs)" >&2
  exit 1
fi
echo "tools/fuzz.sh: no findings"
