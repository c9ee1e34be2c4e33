#!/usr/bin/env bash
# Asks Prism about an image with curl alone (and jq for JSON): Generate over the Connect protocol
# with JSON, which is server-streaming, so the request and each answer event travel in envelopes
# (1 flag byte, a 4-byte big-endian length, the JSON), the last one (flag 0x02) holding the status.
#
#   examples/curl/generate.sh [--server HOST:PORT] [--model provider/model] IMAGE QUESTION
set -euo pipefail

server="${PRISM_ADDRESS:-127.0.0.1:50051}" model=""
while [[ $# -gt 2 ]]; do
  case "$1" in
    --server) server="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || { echo "usage: $0 [--server HOST:PORT] [--model provider/model] IMAGE QUESTION" >&2; exit 2; }
image="$1" question="$2"

# The request as proto3 JSON: bytes are base64. The image goes through a file, not an argument
# (one argument is limited to 128 KiB).
b64="$(mktemp)"; trap 'rm -f "$b64"' EXIT
base64 -w0 "$image" > "$b64"
body="$(jq -cn --rawfile data "$b64" --arg q "$question" --arg model "$model" --arg name "${image##*/}" \
  '{messages: [{role: "ROLE_USER", parts: [{media: {data: $data, name: $name}}, {text: $q}]}], route: {model: $model}}')"

# One envelope: flag 0, then the length of the JSON in 4 bytes, big-endian.
envelope() {
  local n=${#1}
  printf '\0'
  printf "\\$(printf %03o $((n >> 24 & 255)))\\$(printf %03o $((n >> 16 & 255)))\\$(printf %03o $((n >> 8 & 255)))\\$(printf %03o $((n & 255)))"
  printf '%s' "$1"
}

# Reads envelopes from stdin and prints each message's JSON on a line; the end-of-stream message
# ends the loop, and an error in it is printed and makes the script fail.
unenvelope() {
  local flags b1 b2 b3 b4 json
  while read -r flags b1 b2 b3 b4 < <(dd bs=5 count=1 iflag=fullblock status=none | od -An -tu1) && [[ -n "$flags" ]]; do
    json="$(dd bs=$(((b1 << 24) | (b2 << 16) | (b3 << 8) | b4)) count=1 iflag=fullblock status=none)"
    if ((flags & 2)); then
      if jq -e '.error' >/dev/null <<<"$json"; then
        jq -r '"generate.sh: \(.error.code | ascii_upcase): \(.error.message)"' <<<"$json" >&2
        return 1
      fi
      return 0
    fi
    printf '%s\n' "$json"
  done
  echo "generate.sh: the stream ended without its end-of-stream message" >&2
  return 1
}

LC_ALL=C  # ${#body} counts bytes, not characters
auth=(); [[ -n "${PRISM_API_KEY:-}" ]] && auth=(-H "authorization: Bearer $PRISM_API_KEY")
envelope "$body" |
  curl -sS -N --data-binary @- -H 'content-type: application/connect+json' "${auth[@]}" \
    "http://$server/prism.v1.Prism/Generate" |
  unenvelope |
  jq --unbuffered -rj '
    # micro-dollars (a string: proto3 JSON writes 64-bit integers so) as dollars with 6 decimals
    def usd: ("000000" + .) as $p | ($p[:-6] | sub("^0+(?=[0-9])"; "")) + "." + $p[-6:];
    if .routed then "routed: \(.routed.model)\n" + ([(.routed.adaptations // [])[] | "adapted: \(.)\n"] | join(""))
    elif .text then .text.text
    elif .usage then "\nusage: \(.usage.inputTokens // "0") input tokens, \(.usage.outputTokens // "0") output tokens, $\(.usage.costUsdMicros // "0" | usd)\n"
    elif .finished then "finished: \(.finished.stopReason // "STOP_UNSPECIFIED")\n"
    else empty end'
