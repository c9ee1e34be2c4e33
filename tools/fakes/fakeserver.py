"""What the three vendor fakes share: the JSON-lines request log, image sizes from the bytes, a base
request handler, and serving on an ephemeral port that is printed as "PORT <n>" once listening.
Every accepted TCP connection is logged too ({"event": "connection", ...}), so tests can tell
how many connections a client opened for its requests."""

import argparse
import json
import os
import signal
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LOG_LOCK = threading.Lock()


def log(args, entry):
    """Appends one JSON line to --log, if given (tests read it to see what the adapter sent)."""
    if args.log:
        with _LOG_LOCK, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def image_size(data):
    """(width, height) of a PNG or JPEG, or (0, 0)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            seglen = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return w, h
            i += 2 + seglen
    return 0, 0


def agent_script(first_text, turn, modifiers=("slow",)):
    """The scripted agent loop of the Converse tests, the same on every fake. A word `agent-N` in
    the conversation's first user text: turns 1..N-1 end with a tool call (of the request's first
    tool), turn N answers "Done after N turns.", later turns (user follow-ups) as usual; a word
    `slow-turn-K` makes turn K the slow scenario, `overloaded-turn-K` an overloaded vendor (only
    where `modifiers` has it: the Anthropic fake's 529; the others ignore it, so a fallback answers
    the turn). The turn is 1 + the assistant messages sent. Returns "tool", "done", a modifier, or
    None (no agent conversation, or past its end)."""
    words = first_text.split()
    n = next((int(w[6:]) for w in words if w.startswith("agent-") and w[6:].isdigit()), None)
    if n is None:
        return None
    for scenario in modifiers:
        if "%s-turn-%d" % (scenario, turn) in words:
            return scenario
    return "tool" if turn < n else "done" if turn == n else None


class FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, quiet; `args` holds the command line (--key, --log)."""
    protocol_version = "HTTP/1.1"
    args = None

    def log_message(self, *_):
        pass

    def trace_context(self):
        """The W3C trace context headers the request carried ({"traceparent": ..., "tracestate": ...},
        only those present), logged with each request so tests can see a trace reach the vendor."""
        return {name: self.headers[name] for name in ("traceparent", "tracestate") if self.headers.get(name) is not None}


class CountingServer(ThreadingHTTPServer):
    """Logs each accepted connection, numbered from 1, before its handler thread starts."""
    accepted = 0

    def process_request(self, request, client_address):
        self.accepted += 1
        log(self.RequestHandlerClass.args, {"event": "connection", "number": self.accepted, "peer_port": client_address[1]})
        super().process_request(request, client_address)


def serve(handler_class):
    """Parses --port/--key/--log, serves `handler_class` on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key")
    parser.add_argument("--log")
    args = parser.parse_args()
    handler_class.args = args
    # A parent may hand us SIGTERM blocked or ignored (test runners do): make it end us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = CountingServer(("127.0.0.1", args.port), handler_class)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()
