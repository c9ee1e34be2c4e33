#!/usr/bin/env bash
# Sets up, builds (release) and starts prism-server in the foreground with embedded defaults: it
# listens on 127.0.0.1:50051 unless PRISM_LISTEN or --listen says otherwise. Arguments go to the server.
#
#   tools/run.sh                       # setup + build + serve on 127.0.0.1:50051
#   tools/run.sh --interop --listen 127.0.0.1:9000
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/setup.sh
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
swift build -c release
exec .build/release/prism-server "$@"
