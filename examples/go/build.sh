#!/usr/bin/env bash
# Builds the Go example client offline from Debian's packages (golang-go, protoc-gen-go,
# protoc-gen-go-grpc, golang-google-grpc-dev, golang-google-protobuf-dev): GOPATH mode, stubs
# generated from proto/ into the build folder, Go's build cache kept there so a rebuild takes seconds.
#
#   examples/go/build.sh [BUILD_DIR]    # default: $PRISM_EXAMPLES_BUILD/go, else /tmp/prism-examples/go
# Prints the path of the built binary (BUILD_DIR/prism-go-client) on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
proto="$here/../../proto"
build="${1:-${PRISM_EXAMPLES_BUILD:-/tmp/prism-examples}/go}"
mkdir -p "$build/gopath/src"
build="$(cd "$build" && pwd)"

# prism.proto has no go_package option (the API stays language-neutral): the M flag gives it the
# import path "prism/v1", which GOPATH mode finds under $build/gopath/src/prism/v1.
map="Mprism/v1/prism.proto=prism/v1;prismv1"
stubs="$build/gopath/src/prism/v1"
if [[ ! -f "$stubs/prism_grpc.pb.go" || "$proto/prism/v1/prism.proto" -nt "$stubs/prism_grpc.pb.go" ]]; then
  protoc -I "$proto" --go_out="$build/gopath/src" --go_opt="$map" \
    --go-grpc_out="$build/gopath/src" --go-grpc_opt="$map" prism/v1/prism.proto
fi

# Offline: no modules, no proxy; Debian's Go packages live in /usr/share/gocode.
export GO111MODULE=off GOFLAGS= GOPROXY=off
export GOPATH="$build/gopath:/usr/share/gocode"
export GOCACHE="$build/gocache"
go build -o "$build/prism-go-client" "$here/main.go"
echo "$build/prism-go-client"
