"""A small OTLP/HTTP trace receiver for the tracing tests: accepts POST /v1/traces with a protobuf
ExportTraceServiceRequest (gzip or not) and keeps its spans, decoded by a minimal protobuf wire
reader (opentelemetry-proto is not installed: the few fields the tests read are spelled out below,
from opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto)."""

from __future__ import annotations

import gzip
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# opentelemetry.proto.trace.v1.Span.SpanKind
SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 1, 2, 3
# opentelemetry.proto.trace.v1.Status.StatusCode
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def fields(buf: bytes):
    """(field number, value) of each field of a protobuf message: an int for varints, bytes for
    length-delimited fields and fixed 32/64-bit ones."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i:i + length], i + length
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} of field {number} is not one OTLP uses")
        yield number, value


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def any_value(buf: bytes):
    """An AnyValue as Python: string, bool, int (int64), float, or a list for an array."""
    for number, value in fields(buf):
        if number == 1:
            return value.decode()
        if number == 2:
            return bool(value)
        if number == 3:
            return value - (1 << 64) if value >= 1 << 63 else value
        if number == 4:
            return struct.unpack("<d", value)[0]
        if number == 5:
            return [any_value(v) for n, v in fields(value) if n == 1]
    return None


def key_values(items: list[bytes]) -> dict:
    out = {}
    for item in items:
        key, value = "", None
        for number, v in fields(item):
            if number == 1:
                key = v.decode()
            elif number == 2:
                value = any_value(v)
        out[key] = value
    return out


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict
    status_code: int
    status_message: str
    resource: dict = field(default_factory=dict)


def decode_span(buf: bytes, resource: dict) -> Span:
    values = {"trace_id": b"", "span_id": b"", "parent_span_id": b"", "name": "", "kind": 0}
    attributes, status_code, status_message = [], STATUS_UNSET, ""
    for number, value in fields(buf):
        if number == 1:
            values["trace_id"] = value
        elif number == 2:
            values["span_id"] = value
        elif number == 4:
            values["parent_span_id"] = value
        elif number == 5:
            values["name"] = value.decode()
        elif number == 6:
            values["kind"] = value
        elif number == 9:
            attributes.append(value)
        elif number == 15:
            for n, v in fields(value):
                if n == 2:
                    status_message = v.decode()
                elif n == 3:
                    status_code = v
    return Span(values["trace_id"].hex(), values["span_id"].hex(), values["parent_span_id"].hex(), values["name"],
                values["kind"], key_values(attributes), status_code, status_message, resource)


def decode_export(body: bytes) -> list[Span]:
    """The spans of an ExportTraceServiceRequest (resource_spans=1 → scope_spans=2 → spans=2)."""
    spans = []
    for n, resource_spans in fields(body):
        if n != 1:
            continue
        resource, scopes = {}, []
        for m, value in fields(resource_spans):
            if m == 1:
                resource = key_values([v for k, v in fields(value) if k == 1])
            elif m == 2:
                scopes.append(value)
        for scope in scopes:
            spans += [decode_span(v, resource) for k, v in fields(scope) if k == 2]
    return spans


class OTLPReceiver:
    """An OTLP/HTTP collector on an ephemeral loopback port; `endpoint` is what
    OTEL_EXPORTER_OTLP_ENDPOINT takes. Thread-safe."""

    def __init__(self):
        self.spans: list[Span] = []
        self.requests = 0
        self.problems: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                problem = None
                if self.path != "/v1/traces":
                    problem = f"POST {self.path}, expected /v1/traces"
                elif self.headers.get("content-type") != "application/x-protobuf":
                    problem = f"content-type {self.headers.get('content-type')!r}, expected application/x-protobuf"
                with receiver._lock:
                    receiver.requests += 1
                    if problem:
                        receiver.problems.append(problem)
                    else:
                        receiver.spans += decode_export(body)
                self.send_response(400 if problem else 200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "OTLPReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def await_spans(self, trace_id: str, names: list[str], timeout: float = 30.0) -> list[Span]:
        """The spans of `trace_id` once one of each name in `names` has arrived; fails the test
        with what did arrive if they do not within `timeout` (spans are exported in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.trace(trace_id)
            if all(any(s.name == name for s in spans) for name in names):
                return spans
            if time.monotonic() > deadline:
                with self._lock:
                    summary = (f"{self.requests} export requests, {len(self.spans)} spans in all, problems {self.problems}; "
                               f"of trace {trace_id}: {[s.name for s in spans]}")
                raise AssertionError(f"spans {names} of trace {trace_id} did not arrive within {timeout:.0f}s: {summary}")
            time.sleep(0.05)
