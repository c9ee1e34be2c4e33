#!/usr/bin/env bash
# Lists the models Prism can route to, with curl alone (and jq): ListProviders is unary, so over
# the Connect protocol it is a plain POST of the request's JSON, answered with the response's JSON
# (or an HTTP error status and {"code", "message"}).
#
#   examples/curl/list-models.sh [--server HOST:PORT]
set -euo pipefail

server="${PRISM_ADDRESS:-127.0.0.1:50051}"
[[ "${1:-}" == --server ]] && server="$2"
auth=(); [[ -n "${PRISM_API_KEY:-}" ]] && auth=(-H "authorization: Bearer $PRISM_API_KEY")
# --json sends content-type: application/json (Connect's unary JSON) and fails on an HTTP error
# status; --fail-with-body keeps the Connect error's JSON to show it.
curl -sS --fail-with-body --json '{}' "${auth[@]}" "http://$server/prism.v1.Prism/ListProviders" |
  jq -r '.providers[]?.models[]? | "\(.id)\t\((.inputs // []) | join(","))"'
