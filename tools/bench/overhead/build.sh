#!/usr/bin/env bash
# Builds what the gateway-overhead benchmark runs: its two Go tools (the fake OpenAI vendor and
# the load client; grpc-go and protowire from Debian's /usr/share/gocode, GOPATH mode, offline)
# into the gitignored .build-bench/overhead/, and, unless PRISM_SERVER_BIN names a server
# already built, the release prism-server and its OpenAI plugin (`swift build -c release`, the
# default scratch path). Each Go tool is rebuilt only when its sources changed. Called by run.sh;
# `build.sh go` builds only the Go tools.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/../../.." && pwd)"
OUT="$REPO/.build-bench/overhead"

log() { printf 'overhead: %s\n' "$*" >&2; }

# golang-go is the toolchain; the grpc-go and protobuf sources are Debian packages too.
missing=()
for package in golang-go golang-google-grpc-dev golang-google-protobuf-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "$OUT/gopath"
for tool in fake load; do
  if [[ ! -x "$OUT/$tool" || -n "$(find "$BENCH_DIR/$tool" -newer "$OUT/$tool" -type f -print -quit)" ]]; then
    log "building $tool"
    (cd "$BENCH_DIR/$tool" && GO111MODULE=off GOFLAGS= GOPATH="$OUT/gopath:/usr/share/gocode" \
      go build -o "$OUT/$tool" .)
  fi
done

if [[ -z "${PRISM_SERVER_BIN:-}" && "${1:-}" != go ]]; then
  log "building the release prism-server and OpenAI plugin (several minutes when sources changed)"
  (cd "$REPO" && swift build -c release --product prism-server && swift build -c release --product prism-plugin-openai) >&2
fi
