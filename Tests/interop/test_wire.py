"""What the server puts on the wire, checked byte by byte where grpcio would hide it: response headers
and trailers, trailers-only answers, percent-encoded grpc-message, gzip-compressed responses with
the compressed flag, and deadlines the server enforces itself from grpc-timeout."""

from __future__ import annotations

import gzip
import time
import urllib.parse
import zlib

import grpc
import pytest
from grpc.testing import messages_pb2

import h2raw
from h2raw import grpc_message, grpc_request_headers
from harness import SPECIAL_STATUS_MESSAGE

StatusCode = grpc.StatusCode
TEST = "/grpc.testing.TestService/"


@pytest.fixture
def conn(interop_server):
    with interop_server.raw() as c:
        c.handshake()
        yield c


def unary(conn, sid: int, method: str, request: bytes, extra=(), compressed: bool = False) -> h2raw.Stream:
    conn.request(sid, grpc_request_headers(TEST + method, extra=list(extra)), grpc_message(request, compressed))
    return conn.response(sid)


def test_response_headers_and_trailers(conn):
    stream = unary(conn, 1, "EmptyCall", b"")
    assert len(stream.header_blocks) == 2, f"expected response headers and trailers, got {stream.header_blocks}"
    headers, trailers = stream.headers, stream.trailers
    assert headers.get(":status") == "200", headers
    assert headers.get("content-type", "").startswith("application/grpc"), headers
    assert "grpc-status" not in headers, "grpc-status belongs in the trailers when there is a message"
    assert trailers.get("grpc-status") == "0", trailers
    assert stream.ended
    assert stream.messages() == [(False, b"")]


def test_unknown_method_is_a_trailers_only_answer(conn):
    stream = unary(conn, 1, "NoSuchMethod", b"")
    assert len(stream.header_blocks) == 1 and stream.ended and not stream.data, \
        f"an immediate error should be one HEADERS frame with END_STREAM; {conn.summary()}"
    block = stream.headers
    assert block.get(":status") == "200" and block.get("content-type", "").startswith("application/grpc"), block
    assert block.get("grpc-status") == str(StatusCode.UNIMPLEMENTED.value[0]), block


def test_grpc_message_is_percent_encoded(conn):
    request = messages_pb2.SimpleRequest(
        response_status=messages_pb2.EchoStatus(code=2, message=SPECIAL_STATUS_MESSAGE)).SerializeToString()
    stream = unary(conn, 1, "UnaryCall", request)
    raw = stream.trailers.get("grpc-message")
    assert raw is not None, f"no grpc-message; {conn.summary()}"
    assert all(0x20 <= ord(c) <= 0x7E for c in raw), f"grpc-message must be printable ASCII on the wire: {raw!r}"
    assert urllib.parse.unquote(raw, errors="strict") == SPECIAL_STATUS_MESSAGE, raw
    assert stream.grpc_status == 2


@pytest.mark.parametrize("compressed", [True, False])
def test_response_compression_sets_the_flag(conn, compressed):
    request = messages_pb2.SimpleRequest(response_size=31415, response_compressed=messages_pb2.BoolValue(
        value=compressed)).SerializeToString()
    stream = unary(conn, 1, "UnaryCall", request, extra=[("grpc-accept-encoding", "identity,gzip")])
    assert stream.grpc_status == 0, conn.summary()
    [(flag, body)] = stream.messages()
    assert flag == compressed, f"compressed flag {flag} for response_compressed={compressed}"
    if compressed:
        assert stream.headers.get("grpc-encoding") == "gzip", stream.headers
        assert len(body) < 1000, f"31415 zero bytes gzip to far less than {len(body)} bytes"
        body = gzip.decompress(body)
    assert len(messages_pb2.SimpleResponse.FromString(body).payload.body) == 31415


def test_gzip_request_on_the_wire(conn):
    request = messages_pb2.SimpleRequest(response_size=7, payload=messages_pb2.Payload(body=bytes(50000)),
                                         expect_compressed=messages_pb2.BoolValue(value=True)).SerializeToString()
    z = zlib.compressobj(wbits=31)  # gzip framing
    body = z.compress(request) + z.flush()
    stream = unary(conn, 1, "UnaryCall", body, extra=[("grpc-encoding", "gzip")], compressed=True)
    assert stream.grpc_status == 0, conn.summary()
    [(flag, reply)] = stream.messages()
    if flag:
        reply = gzip.decompress(reply)
    assert len(messages_pb2.SimpleResponse.FromString(reply).payload.body) == 7


def test_binary_metadata_is_base64_on_the_wire(conn):
    stream = unary(conn, 1, "EmptyCall", b"", extra=[("x-grpc-test-echo-trailing-bin", "q6ur"),
                                                    ("x-grpc-test-echo-initial", "hello")])
    assert stream.headers.get("x-grpc-test-echo-initial") == "hello", stream.headers
    echoed = stream.trailers.get("x-grpc-test-echo-trailing-bin", "")
    assert echoed.rstrip("=") == "q6ur", f"trailer x-grpc-test-echo-trailing-bin={echoed!r}, expected base64 of ababab"


def test_server_enforces_grpc_timeout(conn):
    # FullDuplexCall that the client never half-closes: only the server's own deadline can end it.
    start = time.monotonic()
    conn.request(1, grpc_request_headers(TEST + "FullDuplexCall", extra=[("grpc-timeout", "300m")]),
                 end_stream=False)
    stream = conn.response(1, timeout=5)
    took = time.monotonic() - start
    assert stream.grpc_status == StatusCode.DEADLINE_EXCEEDED.value[0] or stream.rst_code is not None, \
        f"a call past its 300 ms grpc-timeout should end with DEADLINE_EXCEEDED; {conn.summary()}"
    assert 0.25 <= took <= 3.0, f"the call ended {took:.2f}s after it started; its deadline was 300 ms"


@pytest.mark.parametrize("timeout", ["5S", "5000m", "5000000u", "1M", "1H", "99999999n"])
def test_grpc_timeout_units(conn, timeout):
    stream = unary(conn, 1, "EmptyCall", b"", extra=[("grpc-timeout", timeout)])
    if timeout == "99999999n":  # 0.1 s: still plenty for EmptyCall on loopback
        assert stream.grpc_status in (0, StatusCode.DEADLINE_EXCEEDED.value[0]), conn.summary()
    else:
        assert stream.grpc_status == 0, f"grpc-timeout {timeout}; {conn.summary()}"


def test_client_reset_of_a_stream_leaves_the_connection_usable(conn):
    conn.request(1, grpc_request_headers(TEST + "FullDuplexCall"), end_stream=False)
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=10, interval_us=200_000)] * 50)
    conn.send(h2raw.data_frame(1, grpc_message(request.SerializeToString())))
    conn.read_until(lambda: len(conn.stream(1).data) > 0, 5, "the first FullDuplexCall response")
    conn.send(h2raw.rst_stream_frame(1, h2raw.CANCEL))
    stream = unary(conn, 3, "EmptyCall", b"")
    assert stream.grpc_status == 0, conn.summary()
    time.sleep(0.5)
    conn.drain(quiet=0.3, limit=1.0)
    # After our RST_STREAM the server must stop producing the 50 responses (19 bytes each on the
    # wire, one per 200 ms); the few in flight when the reset arrived are tolerated.
    assert len(conn.stream(1).data) < 10 * 19, f"the server kept sending after the reset; {conn.summary()}"
