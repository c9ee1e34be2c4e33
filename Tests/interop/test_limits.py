"""Configured limits: --max-receive-message-bytes (RESOURCE_EXHAUSTED, also for a small gzip message
that inflates past the limit) and --max-concurrent-streams (advertised in SETTINGS and enforced)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc.testing import messages_pb2, test_pb2_grpc

import h2raw
from harness import RPC_TIMEOUT_S, assert_serving, assert_status, rpc_error, zeros

StatusCode = grpc.StatusCode
MAX_RECEIVE = 1000  # as configured for the "limits" server in conftest.py
MAX_STREAMS = 4


@pytest.fixture(scope="module")
def limits_server(servers, transport):
    """--interop --max-receive-message-bytes 1000 --max-concurrent-streams 4"""
    return servers.get("limits", transport)


@pytest.fixture
def limits_stub(limits_server):
    with limits_server.channel() as channel:
        yield test_pb2_grpc.TestServiceStub(channel)


def unary(stub, request_size: int, response_size: int = 10):
    request = messages_pb2.SimpleRequest(response_size=response_size,
                                         payload=messages_pb2.Payload(body=zeros(request_size)))
    return stub.UnaryCall(request, timeout=RPC_TIMEOUT_S)


def test_message_over_the_limit_is_resource_exhausted_and_a_small_one_works(limits_stub, limits_server):
    assert len(unary(limits_stub, 100).payload.body) == 10, "a 100-byte request before the large one"
    err = rpc_error(lambda: unary(limits_stub, 2000), "a 2000-byte UnaryCall with a 1000-byte limit")
    assert_status(err, StatusCode.RESOURCE_EXHAUSTED, "2000-byte UnaryCall over a 1000-byte limit")
    assert err.details(), "RESOURCE_EXHAUSTED should name the limit in its message"
    # The same channel (same connection) and a new one both still work.
    assert len(unary(limits_stub, 100).payload.body) == 10, "a 100-byte request after the large one"
    assert_serving(limits_server, "after refusing a large message")


def request_of_size(total: int) -> messages_pb2.SimpleRequest:
    """A SimpleRequest that serializes to exactly `total` bytes."""
    for n in range(total, -1, -1):
        request = messages_pb2.SimpleRequest(response_size=10, payload=messages_pb2.Payload(body=zeros(n)))
        if request.ByteSize() == total:
            return request
    raise AssertionError(f"no SimpleRequest of exactly {total} bytes")


def test_limit_boundary_is_inclusive(limits_stub):
    # A message of exactly the limit is accepted; one byte more is not.
    at_limit, over = request_of_size(MAX_RECEIVE), request_of_size(MAX_RECEIVE + 1)
    assert len(limits_stub.UnaryCall(at_limit, timeout=RPC_TIMEOUT_S).payload.body) == 10, \
        f"a message of exactly {MAX_RECEIVE} bytes"
    err = rpc_error(lambda: limits_stub.UnaryCall(over, timeout=RPC_TIMEOUT_S), f"a {MAX_RECEIVE + 1}-byte message")
    assert_status(err, StatusCode.RESOURCE_EXHAUSTED, f"{MAX_RECEIVE + 1}-byte message over a {MAX_RECEIVE}-byte limit")


def test_limit_applies_to_the_decompressed_size(limits_server):
    # 5000 zero bytes gzip to a few dozen: small on the wire, over the limit once inflated.
    with limits_server.channel(compression=grpc.Compression.Gzip) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        err = rpc_error(lambda: unary(stub, 5000), "a gzip message that inflates to 5000 bytes")
        assert_status(err, StatusCode.RESOURCE_EXHAUSTED, "gzip message inflating past the limit")
        assert len(unary(stub, 100).payload.body) == 10, "a small gzip request afterwards"


def test_streamed_message_over_the_limit(limits_stub):
    requests = [messages_pb2.StreamingInputCallRequest(payload=messages_pb2.Payload(body=zeros(n)))
                for n in (100, 2000, 100)]
    err = rpc_error(lambda: limits_stub.StreamingInputCall(iter(requests), timeout=RPC_TIMEOUT_S),
                    "StreamingInputCall with a 2000-byte message")
    assert_status(err, StatusCode.RESOURCE_EXHAUSTED, "StreamingInputCall with a message over the limit")


def test_responses_are_not_bound_by_the_receive_limit(limits_stub):
    assert len(unary(limits_stub, 10, response_size=100_000).payload.body) == 100_000


def test_max_concurrent_streams_is_advertised(limits_server):
    with limits_server.raw() as conn:
        settings = conn.handshake()
    assert settings.get(h2raw.SETTINGS_MAX_CONCURRENT_STREAMS) == MAX_STREAMS, \
        f"server SETTINGS {settings}; expected MAX_CONCURRENT_STREAMS={MAX_STREAMS}"


def test_streams_over_the_limit_are_refused(limits_server):
    path = "/grpc.testing.TestService/FullDuplexCall"
    stream_ids = list(range(1, 2 * 10, 2))  # ten streams, each left open (no END_STREAM)
    with limits_server.raw() as conn:
        conn.handshake()
        for sid in stream_ids:
            conn.request(sid, h2raw.grpc_request_headers(path), end_stream=False)
        over = stream_ids[MAX_STREAMS:]
        conn.drain(quiet=1.0, limit=10.0, until=lambda: all(
            conn.streams.get(s) is not None and conn.streams[s].rst_code is not None for s in over))
        if conn.goaway is None and not conn.closed:
            refused = [s for s in over if conn.streams.get(s) and conn.streams[s].rst_code is not None]
            assert refused == over, (f"streams beyond the {MAX_STREAMS} allowed should be reset; reset: "
                                     f"{refused} of {over}; {conn.summary()}")
            open_ok = [s for s in stream_ids[:MAX_STREAMS] if conn.streams.get(s) and conn.streams[s].rst_code]
            assert not open_ok, f"streams within the limit were reset: {open_ok}; {conn.summary()}"
    assert_serving(limits_server, "after a client opened more streams than allowed")


def test_grpcio_client_over_the_limit_just_waits(limits_server):
    # A well-behaved client queues calls beyond MAX_CONCURRENT_STREAMS; all of them complete. The
    # first call lets the client learn the limit from SETTINGS (before that it may open more streams
    # and see REFUSED_STREAM, which a default grpcio channel retries transparently, as here).
    with limits_server.channel(options=[("grpc.enable_retries", 1)]) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        assert len(unary(stub, 10).payload.body) == 10

        def call(i: int) -> int:
            request = messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=10, interval_us=50_000)])
            return sum(len(r.payload.body) for r in stub.FullDuplexCall(iter([request]), timeout=RPC_TIMEOUT_S))

        with ThreadPoolExecutor(max_workers=12) as pool:
            assert list(pool.map(call, range(12))) == [10] * 12
