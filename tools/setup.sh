#!/usr/bin/env bash
# Installs every Debian and PyPI package that building Prism and running its tests need, on Debian 12.
# Idempotent: when everything is already there it only looks (well under a second) and changes nothing.
# Run it as root, or as a user with sudo. Add a package by adding it to one of the two arrays below.
set -euo pipefail

# Debian packages: C libraries the Swift targets and plugins link against (with pkg-config to find
# them), the protobuf compilers tools/gen-proto.sh runs, the local engines' models, and the tools the
# tests use (openssl makes test certificates; nghttp2-client brings nghttp and h2load; nghttp2-proxy
# brings nghttpx, the TLS + HTTP/2 front the vendor TLS tests put before the fake vendors; gdb lets
# the interop harness print a hung server's threads before it kills it; chromium and its driver run
# the web console's tests in a real, headless browser; the example clients of examples/ are built
# and run by the tests: Go in GOPATH mode from Debian's Go packages, where protobuf 1.5 must replace
# the 1.3 that grpc-go pulls in, C++ with gRPC's protoc plugin, and curl with jq for the shell one).
PRISM_APT_PACKAGES=(
  pkg-config
  zlib1g-dev
  libnghttp2-dev
  libprotobuf-c-dev
  protobuf-c-compiler
  protobuf-compiler
  libprotobuf-dev
  libssl-dev
  openssl
  libvips-dev
  libpoppler-glib-dev
  libavformat-dev
  libavcodec-dev
  libavutil-dev
  libswresample-dev
  libswscale-dev
  libavfilter-dev
  ffmpeg
  libvips-tools
  libtesseract-dev
  tesseract-ocr-eng
  libpocketsphinx-dev
  pocketsphinx-en-us
  pocketsphinx-testdata
  libespeak-ng-dev
  espeak-ng
  libcurl4-openssl-dev
  libsqlite3-dev
  nghttp2-client
  nghttp2-proxy
  # Shared state for several replicas (issue 15) and the load balancer in front of them; the tests
  # start their own throwaway servers with tools/services.sh and tools/cluster.sh.
  postgresql
  libpq-dev
  redis-server
  nginx-light
  libhiredis-dev
  gdb
  chromium
  chromium-driver
  golang-go
  protoc-gen-go
  protoc-gen-go-grpc
  golang-google-grpc-dev
  golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev
  g++
  make
  libgrpc++-dev
  protobuf-compiler-grpc
  curl
  jq
)

# PyPI packages for the interop suite (Tests/interop), as "import-name=pip-name": the real gRPC client
# and its code generator, pytest with per-test timeouts, and hpack (the HTTP/2 header codec of the h2
# project) so the raw-socket tests can read the server's compressed header blocks; prometheus_client's
# parser reads /metrics in the HTTP/1.1 tests as Prometheus itself would; selenium drives chromium
# for the console tests (through Debian's chromedriver, named explicitly: its driver manager never runs).
PRISM_PIP_PACKAGES=(
  grpc=grpcio
  grpc_tools=grpcio-tools
  pytest=pytest
  pytest_timeout=pytest-timeout
  hpack=hpack
  prometheus_client=prometheus-client
  selenium=selenium
)

# Where the Swift toolchain lives on our machines; it is not a Debian package.
SWIFT_HOME=/opt/swift

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [[ "$(id -u)" -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  die "not root and sudo is not installed; run this script as root"
fi

# --- Debian packages ---------------------------------------------------------------------------

apt_wanted=("${PRISM_APT_PACKAGES[@]}")
# Python itself and pip come from Debian only where the machine has none of its own.
if ! command -v python3 >/dev/null 2>&1; then
  apt_wanted+=(python3 python3-pip)
elif ! python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("pip") is None)' 2>/dev/null; then
  apt_wanted+=(python3-pip)
fi

# One dpkg-query for the whole list: a package counts as present only when fully installed ("ii").
declare -A installed=()
while read -r name status; do
  [[ "$status" == ii ]] && installed["$name"]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${apt_wanted[@]}" 2>/dev/null || true)

apt_missing=()
for pkg in "${apt_wanted[@]}"; do
  [[ -n "${installed[$pkg]:-}" ]] || apt_missing+=("$pkg")
done

if ((${#apt_missing[@]})); then
  log "installing Debian packages: ${apt_missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
else
  log "Debian packages: all ${#apt_wanted[@]} present"
fi

# --- PyPI packages -----------------------------------------------------------------------------

command -v python3 >/dev/null 2>&1 || die "python3 is still missing after installing Debian's python3"

# One python3 run for the whole list; find_spec looks for a module without importing it.
mapfile -t pip_missing < <(python3 - "${PRISM_PIP_PACKAGES[@]}" <<'PY'
import importlib.util, sys
for entry in sys.argv[1:]:
    module, _, package = entry.partition("=")
    if importlib.util.find_spec(module) is None:
        print(package)
PY
)

if ((${#pip_missing[@]})); then
  log "installing PyPI packages: ${pip_missing[*]}"
  pip_args=(install -q --disable-pip-version-check)
  # Debian's own python3 refuses pip installs into the system (PEP 668) unless told otherwise; a
  # pyenv or venv python has no such marker.
  if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))' 2>/dev/null; then
    pip_args+=(--break-system-packages)
  fi
  if [[ "$(id -u)" -ne 0 ]] && ! python3 -c 'import os, sys, sysconfig; sys.exit(not os.access(sysconfig.get_path("purelib"), os.W_OK))' 2>/dev/null; then
    pip_args+=(--user)
  fi
  python3 -m pip "${pip_args[@]}" "${pip_missing[@]}"
else
  log "PyPI packages: all ${#PRISM_PIP_PACKAGES[@]} present"
fi

# --- Swift -------------------------------------------------------------------------------------

if ! command -v swift >/dev/null 2>&1; then
  if [[ -x "$SWIFT_HOME/usr/bin/swift" ]]; then
    # Only this script's own PATH changes; callers add the same directory (tools/test.sh does).
    export PATH="$SWIFT_HOME/usr/bin:$PATH"
    log "swift is not on PATH; add it with: export PATH=$SWIFT_HOME/usr/bin:\$PATH"
  else
    die "swift not found on PATH or in $SWIFT_HOME/usr/bin; install a Swift 6 toolchain (swift.org) first"
  fi
fi
log "$(swift --version 2>/dev/null | head -n 1)"
log "done"
