"""Hostile and malformed input on raw sockets, over h2c and TLS: each case either gets the right gRPC
answer or has its connection closed, and afterwards the server still serves a normal grpcio call on a
fresh connection. These tests get a server of their own so a flood never disturbs another test."""

from __future__ import annotations

import socket
import struct

import grpc
import pytest
from grpc.testing import messages_pb2

import h2raw
from h2raw import grpc_message, grpc_request_headers
from harness import assert_serving

StatusCode = grpc.StatusCode
EMPTY_CALL = "/grpc.testing.TestService/EmptyCall"
UNARY_CALL = "/grpc.testing.TestService/UnaryCall"
FLOOD = 10_000
CLOSE_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def abuse_server(servers, transport):
    return servers.get("abuse", transport)


@pytest.fixture
def conn(abuse_server):
    """A raw HTTP/2 connection after the preface and SETTINGS exchange. After the test, the server
    must still answer a normal grpcio call on a fresh channel."""
    with abuse_server.raw() as c:
        c.handshake()
        yield c
    assert_serving(abuse_server)


def grpc_status_name(code: int | None) -> str:
    if code is None:
        return "none"
    return next((s.name for s in StatusCode if s.value[0] == code), str(code))


def assert_grpc_error(stream: h2raw.Stream, allowed: set[StatusCode], what: str, conn: h2raw.Connection) -> None:
    codes = {s.value[0] for s in allowed}
    assert stream.grpc_status in codes, (
        f"{what}: expected grpc-status {sorted(s.name for s in allowed)}, got {grpc_status_name(stream.grpc_status)}; "
        f"{conn.summary()}")


def refused_or_failed(stream: h2raw.Stream, conn: h2raw.Connection) -> bool:
    """Anything but success: the stream was reset or answered with an error, or the connection was
    closed or given a GOAWAY that excludes the stream. (A RST_STREAM after a complete, successful
    answer, which some servers send, is still a success.)"""
    succeeded = stream.ended and stream.headers.get(":status") == "200" and stream.grpc_status == 0
    if succeeded:
        return False
    if stream.rst_code is not None or conn.closed:
        return True
    if conn.goaway is not None and (conn.goaway[1] != h2raw.NO_ERROR or conn.goaway[0] < stream.id):
        return True  # a connection error, or a GOAWAY saying this stream was never processed
    status = stream.headers.get(":status")
    return (status is not None and status != "200") or stream.grpc_status not in (None, 0)


# --- malformed requests ------------------------------------------------------------------------


def test_non_grpc_content_type(conn):
    conn.request(1, grpc_request_headers(EMPTY_CALL, content_type="text/plain"), grpc_message(b""))
    stream = conn.response(1)
    status = stream.headers.get(":status")
    if status == "415":
        return  # what the gRPC HTTP/2 spec suggests for a content-type it does not serve
    assert status == "200" and stream.grpc_status not in (None, 0), (
        f"text/plain request should get HTTP 415 or a gRPC error status, got :status {status} and "
        f"grpc-status {grpc_status_name(stream.grpc_status)}; {conn.summary()}")


def test_truncated_length_prefix(conn):
    conn.request(1, grpc_request_headers(EMPTY_CALL), b"\x00\x00\x00")  # 3 of the 5 prefix bytes, then END_STREAM
    assert_grpc_error(conn.response(1), {StatusCode.INTERNAL, StatusCode.INVALID_ARGUMENT},
                      "a 3-byte message prefix", conn)


def test_truncated_message_body(conn):
    body = struct.pack(">BI", 0, 100) + b"\x00" * 10  # declares 100 bytes, sends 10, then END_STREAM
    conn.request(1, grpc_request_headers(UNARY_CALL), body)
    assert_grpc_error(conn.response(1), {StatusCode.INTERNAL, StatusCode.INVALID_ARGUMENT},
                      "a message cut short by END_STREAM", conn)


def test_undecodable_protobuf(conn):
    conn.request(1, grpc_request_headers(UNARY_CALL), grpc_message(b"\xff\xff\xff\xff"))
    assert_grpc_error(conn.response(1), {StatusCode.INTERNAL, StatusCode.INVALID_ARGUMENT},
                      "bytes that are not a SimpleRequest", conn)


def test_compressed_flag_without_grpc_encoding(conn):
    conn.request(1, grpc_request_headers(EMPTY_CALL), grpc_message(b"\x00", compressed=True))
    assert_grpc_error(conn.response(1), {StatusCode.INTERNAL, StatusCode.INVALID_ARGUMENT},
                      "the compressed flag with no grpc-encoding header", conn)


def test_unsupported_grpc_encoding(conn):
    # doc/compression.md in grpc/grpc: UNIMPLEMENTED, listing what the server does accept. (gRPC
    # C-core answers INTERNAL here, which is tolerated; success is not.)
    headers = grpc_request_headers(EMPTY_CALL, extra=[("grpc-encoding", "snappy-prism-test")])
    conn.request(1, headers, grpc_message(b"xyz", compressed=True))
    stream = conn.response(1)
    assert_grpc_error(stream, {StatusCode.UNIMPLEMENTED, StatusCode.INTERNAL}, "an unsupported grpc-encoding", conn)
    if stream.grpc_status == StatusCode.UNIMPLEMENTED.value[0]:
        accepted = stream.trailers.get("grpc-accept-encoding", stream.headers.get("grpc-accept-encoding", ""))
        assert "gzip" in accepted, f"UNIMPLEMENTED for an encoding should list grpc-accept-encoding, got {accepted!r}"


def test_corrupt_gzip_body(conn):
    headers = grpc_request_headers(UNARY_CALL, extra=[("grpc-encoding", "gzip")])
    conn.request(1, headers, grpc_message(b"\x1f\x8b\x08\x00not really gzip", compressed=True))
    assert_grpc_error(conn.response(1), {StatusCode.INTERNAL, StatusCode.INVALID_ARGUMENT},
                      "a compressed message that is not gzip", conn)


def test_declared_message_length_over_the_limit_is_refused_at_once(conn):
    # The prefix claims 2 GiB (far over the 64 MiB default); the server must refuse without waiting
    # for (or buffering) the body, while the client still holds the stream open.
    conn.request(1, grpc_request_headers(UNARY_CALL), struct.pack(">BI", 0, 0x7FFFFFFF) + b"\x00" * 16,
                 end_stream=False)
    stream = conn.response(1, timeout=CLOSE_WITHIN_S)
    if stream.rst_code is None:
        assert_grpc_error(stream, {StatusCode.RESOURCE_EXHAUSTED}, "a 2 GiB message prefix", conn)


def test_missing_path_and_method(conn):
    headers = [(":scheme", "http"), (":authority", "localhost"), ("content-type", "application/grpc")]
    conn.request(1, headers, grpc_message(b""))
    stream = conn.response(1)
    assert refused_or_failed(stream, conn), f"a request without :method and :path succeeded; {conn.summary()}"


# --- broken connections ------------------------------------------------------------------------


def test_garbage_instead_of_the_preface(abuse_server):
    with abuse_server.raw() as c:
        c.send(b"\x00\x01GARBAGE that is no HTTP/2 preface\r\n\r\n" + bytes(range(256)) * 4)
        assert c.wait_closed(CLOSE_WITHIN_S), f"connection still open {CLOSE_WITHIN_S}s after garbage; {c.summary()}"
    assert_serving(abuse_server)


def test_garbage_instead_of_a_tls_client_hello(servers):
    abuse_server = servers.get("abuse", "tls")
    with socket.create_connection((abuse_server.host, abuse_server.port), timeout=CLOSE_WITHIN_S) as s:
        s.sendall(b"\x16\x03\x01\x00\x10 not a client hello at all " * 8)
        s.settimeout(CLOSE_WITHIN_S)
        received = b""
        while True:
            chunk = s.recv(4096)  # a TLS alert, maybe, then EOF
            if not chunk:
                break
            received += chunk
            assert len(received) < 65536, "the server keeps talking to a peer that sent garbage"
    assert_serving(abuse_server)


def test_frame_on_stream_zero_that_needs_a_stream(conn):
    conn.send(h2raw.data_frame(0, b"data on stream zero"))
    conn.drain(quiet=CLOSE_WITHIN_S, limit=CLOSE_WITHIN_S, until=lambda: conn.goaway is not None)
    assert conn.closed or conn.goaway is not None, \
        f"DATA on stream 0 is a connection error (RFC 9113 6.1); {conn.summary()}"
    assert conn.goaway is None or conn.goaway[1] == h2raw.PROTOCOL_ERROR, f"GOAWAY {conn.goaway}"


def test_frame_over_the_advertised_max_frame_size(conn):
    # One byte over the server's SETTINGS_MAX_FRAME_SIZE (16 KiB unless it says otherwise):
    # a FRAME_SIZE_ERROR (RFC 9113 4.2), which must not be answered as a normal call.
    max_frame = conn.server_settings.get(h2raw.SETTINGS_MAX_FRAME_SIZE, h2raw.DEFAULT_MAX_FRAME)
    if max_frame >= (1 << 24) - 1:
        pytest.skip(f"the server accepts the largest frame HTTP/2 can express ({max_frame})")
    conn.request(1, grpc_request_headers(EMPTY_CALL), end_stream=False)
    conn.pump(h2raw.data_frame(1, grpc_message(b"") + b"\x00" * (max_frame - 4), end_stream=True), timeout=30)
    conn.drain(quiet=CLOSE_WITHIN_S, limit=CLOSE_WITHIN_S,
               until=lambda: conn.goaway is not None or conn.stream(1).rst_code is not None)
    assert refused_or_failed(conn.stream(1), conn), \
        f"a {max_frame + 1}-byte frame (limit {max_frame}) was accepted; {conn.summary()}"


# --- floods ------------------------------------------------------------------------------------


def test_ping_flood(conn):
    conn.pump(b"".join(h2raw.ping_frame(b"%08d" % i) for i in range(FLOOD)), timeout=60)
    conn.drain(quiet=2.0, limit=30.0, until=lambda: conn.ping_acks >= FLOOD)
    assert conn.ping_acks == FLOOD or conn.closed or conn.goaway is not None, (
        f"{FLOOD} PINGs got {conn.ping_acks} ACKs and the connection is still open with no GOAWAY: "
        f"answer every PING or drop the flooding connection; {conn.summary()}")


def test_settings_flood(conn):
    conn.pump(h2raw.settings_frame({h2raw.SETTINGS_INITIAL_WINDOW_SIZE: 65535}) * FLOOD, timeout=60)
    conn.drain(quiet=2.0, limit=30.0, until=lambda: conn.settings_acks >= FLOOD)
    assert conn.settings_acks == FLOOD or conn.closed or conn.goaway is not None, (
        f"{FLOOD} SETTINGS got {conn.settings_acks} ACKs and the connection is still open with no GOAWAY; "
        f"{conn.summary()}")


def test_rapid_reset_flood(conn):
    # HEADERS for a real call, then RST_STREAM for it at once, ten thousand times (CVE-2023-44487).
    block = h2raw.encode_headers(grpc_request_headers(EMPTY_CALL))
    flood = b"".join(h2raw.headers_frames(sid, block) + h2raw.rst_stream_frame(sid, h2raw.CANCEL)
                     for sid in range(1, 2 * FLOOD, 2))
    conn.pump(flood, timeout=60)
    conn.drain(quiet=2.0, limit=30.0)
    if not conn.closed and conn.goaway is None:
        # The server chose to keep the connection: then it must still work.
        sid = 2 * FLOOD + 1
        conn.request(sid, grpc_request_headers(EMPTY_CALL), grpc_message(b""))
        stream = conn.response(sid, timeout=10)
        assert stream.grpc_status == 0, f"a normal call after the flood on the same connection; {conn.summary()}"


def test_window_update_flood_on_stream_zero(conn):
    conn.pump(h2raw.window_update_frame(0, 1) * FLOOD, timeout=60)
    conn.drain(quiet=1.0, limit=10.0)
    # Windows may not grow past 2^31-1; 10,000 increments of 1 stay far below, so the connection is
    # fine unless the server treats the flood itself as abuse.
    if not conn.closed and conn.goaway is None:
        conn.request(1, grpc_request_headers(EMPTY_CALL), grpc_message(b""))
        assert conn.response(1).grpc_status == 0, conn.summary()


# --- header blocks over the limit --------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one 100 KiB value", "2,000 headers of 128 bytes"])
def test_header_block_over_the_limit(conn, shape):
    if shape.startswith("one"):
        extra = [("x-huge", "a" * (100 * 1024))]
    else:
        extra = [(f"x-many-{i:04d}", "b" * 116) for i in range(2000)]
    conn.request(1, grpc_request_headers(EMPTY_CALL, extra=extra), end_stream=True)
    stream = conn.response(1, timeout=10)
    assert refused_or_failed(stream, conn), f"a request with {shape} succeeded; {conn.summary()}"


def test_many_small_continuation_frames(conn):
    # A header block dribbled out one byte per CONTINUATION frame (the 2024 "CONTINUATION flood"),
    # 64 KiB of it: the server must bound what it buffers, or at least answer correctly at the end.
    block = h2raw.encode_headers(grpc_request_headers(EMPTY_CALL, extra=[("x-pad", "c" * (64 * 1024))]))
    frames = [h2raw.frame(h2raw.HEADERS, 0, 1, block[:1])]
    frames += [h2raw.frame(h2raw.CONTINUATION, 0, 1, block[i:i + 1]) for i in range(1, len(block) - 1)]
    frames.append(h2raw.frame(h2raw.CONTINUATION, h2raw.END_HEADERS, 1, block[-1:]))
    conn.pump(b"".join(frames), timeout=60)
    stream = conn.response(1, timeout=10) if not conn.closed else conn.stream(1)
    # Refused (the header list is over any sane limit) or answered normally; never a hang.
    assert refused_or_failed(stream, conn) or stream.grpc_status == 0, \
        f"the stream ended without a gRPC status; {conn.summary()}"


def test_unknown_frame_types_are_ignored(conn):
    # RFC 9113 5.5: unknown frame types must be ignored; the call after them works.
    conn.send(h2raw.frame(0xFA, 0, 0, b"extension") + h2raw.frame(0xFB, 0xFF, 1, b"\x00" * 32))
    conn.request(1, grpc_request_headers(EMPTY_CALL), grpc_message(b""))
    stream = conn.response(1)
    assert stream.grpc_status == 0, f"EmptyCall after unknown frame types; {conn.summary()}"
    assert stream.messages() == [(False, b"")]


def test_request_after_abuse_on_the_same_server_answers_correctly(conn):
    # A control: the raw client itself speaks correct gRPC (so the failures above mean something).
    request = messages_pb2.SimpleRequest(response_size=42).SerializeToString()
    conn.request(1, grpc_request_headers(UNARY_CALL), grpc_message(request))
    stream = conn.response(1)
    assert stream.headers.get(":status") == "200", conn.summary()
    assert stream.headers.get("content-type", "").startswith("application/grpc"), stream.headers
    assert stream.grpc_status == 0, conn.summary()
    [(compressed, body)] = stream.messages()
    assert not compressed
    assert len(messages_pb2.SimpleResponse.FromString(body).payload.body) == 42
