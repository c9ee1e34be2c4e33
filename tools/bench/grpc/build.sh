#!/usr/bin/env bash
# Installs what the gRPC benchmark needs (idempotently) and builds its servers into the gitignored
# scratch folder .build-bench/: the release prism-server and the peers it is compared with, gRPC C++
# (Debian libgrpc++), grpc-go (Debian golang-google-grpc-dev, GOPATH mode, offline), grpc-swift-2 and
# Python grpcio. Each build is skipped when its output is newer than its sources. Called by run.sh;
# `build.sh cpp go` builds only those (names: prism cpp go swift).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
SCRATCH="$REPO/.build-bench"
PEERS="$SCRATCH/peers"

# The benchmark's own Debian packages, beyond the project's (tools/setup.sh): the load generator,
# the C++ peer's library and code generators, the Go peer's toolchain and libraries, the profiler.
BENCH_APT_PACKAGES=(
  nghttp2-client
  g++
  pkg-config
  protobuf-compiler
  protobuf-compiler-grpc
  libgrpc++-dev
  golang-go
  golang-google-grpc-dev
  golang-goprotobuf-dev
  golang-google-protobuf-dev
  valgrind
)

log() { printf 'bench: %s\n' "$*" >&2; }

# True when $1 is missing or any later argument (file or folder, searched) is newer than it.
stale() {
  local output="$1"; shift
  [[ ! -e "$output" ]] && return 0
  [[ -n "$(find "$@" -newer "$output" -type f -print -quit)" ]]
}

install_packages() {
  # Prism's own build dependencies come from the project's setup script.
  "$REPO/tools/setup.sh" >/dev/null
  local missing=()
  for package in "${BENCH_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$package")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  python3 -c 'import grpc' 2>/dev/null || python3 -m pip install -q grpcio
}

build_prism() {
  log "building prism-server (release; several minutes when sources changed)"
  (cd "$REPO" && swift build -c release --scratch-path "$SCRATCH" --product prism-server) >&2
}

# gRPC C++: message and service code generated from our protos into the scratch folder.
build_cpp_peer() {
  local out="$PEERS/cpp" protos=(grpc/health/v1/health.proto grpc/testing/empty.proto
    grpc/testing/messages.proto grpc/testing/test.proto)
  stale "$out/cpp-peer" "$BENCH_DIR/cpp-peer" "$REPO/proto/grpc" || return 0
  log "building the gRPC C++ peer (about a minute)"
  rm -rf "$out/gen" && mkdir -p "$out/gen"
  (cd "$REPO/proto" && protoc -I . --cpp_out="$out/gen" --grpc_out="$out/gen" \
    --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" "${protos[@]}")
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  g++ -O2 -std=c++17 -I"$out/gen" -o "$out/cpp-peer.tmp" "$BENCH_DIR/cpp-peer/main.cc" \
    $(find "$out/gen" -name '*.cc') $(pkg-config --cflags --libs grpc++ protobuf)
  mv "$out/cpp-peer.tmp" "$out/cpp-peer"
}

# grpc-go, offline: Debian's Go sources in /usr/share/gocode, our own GOPATH entry first.
build_go_peer() {
  local out="$PEERS/go"
  stale "$out/go-peer" "$BENCH_DIR/go-peer" || return 0
  log "building the grpc-go peer"
  mkdir -p "$out/gopath"
  (cd "$BENCH_DIR/go-peer" && GO111MODULE=off GOFLAGS= GOPATH="$out/gopath:/usr/share/gocode" \
    go build -o "$out/go-peer" main.go)
}

# grpc-swift-2: its own SwiftPM package, built in a scratch path of its own.
build_swift_peer() {
  local out="$SCRATCH/swift-peer"
  log "building the grpc-swift-2 peer (release; several minutes the first time)"
  swift build -c release --package-path "$BENCH_DIR/swift-peer" --scratch-path "$out" >&2
}

install_packages
for target in "${@:-prism cpp go swift}"; do
  for name in $target; do
    case "$name" in
      prism) build_prism ;;
      cpp) build_cpp_peer ;;
      go) build_go_peer ;;
      swift) build_swift_peer ;;
      *) log "unknown build target '$name' (prism cpp go swift)"; exit 2 ;;
    esac
  done
done
