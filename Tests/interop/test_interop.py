"""The gRPC interop test cases (grpc/grpc doc/interop-test-descriptions.md), run by grpcio against
`prism-server --interop` over h2c and over TLS, plus gzip in both directions and a few larger or
more concurrent variants of the same calls."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc

from harness import RPC_TIMEOUT_S, SPECIAL_STATUS_MESSAGE, assert_status, rpc_error, zeros

StatusCode = grpc.StatusCode

REQUEST_SIZES = [27182, 8, 1828, 45904]
RESPONSE_SIZES = [31415, 9, 2653, 58979]
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")


def payload(n: int) -> messages_pb2.Payload:
    return messages_pb2.Payload(body=zeros(n))


def streaming_request(response_size: int | None = None, request_size: int = 0, **kw):
    params = [messages_pb2.ResponseParameters(size=response_size)] if response_size is not None else []
    return messages_pb2.StreamingOutputCallRequest(response_parameters=params, payload=payload(request_size), **kw)


def assert_zeros(body: bytes, size: int, what: str) -> None:
    assert len(body) == size, f"{what}: payload is {len(body)} bytes, expected {size}"
    assert body.count(0) == size, f"{what}: payload of {size} bytes is not all zeros"


class Pinger:
    """Feeds a bidirectional call one request at a time, so the test can wait for each reply
    before it sends the next (the request iterator runs on a grpcio thread)."""

    _CLOSE = object()

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()

    def requests(self):
        while True:
            item = self._queue.get(timeout=RPC_TIMEOUT_S)
            if item is self._CLOSE:
                return
            yield item

    def send(self, request) -> None:
        self._queue.put(request)

    def half_close(self) -> None:
        self._queue.put(self._CLOSE)


def blocking_requests(stop: threading.Event, first=None):
    """A request stream that sends `first` (if any) and then neither sends nor half-closes until
    `stop` is set: the client side of a call that is still open."""
    if first is not None:
        yield first
    stop.wait(RPC_TIMEOUT_S)


# --- the interop cases --------------------------------------------------------------------------


def test_empty_unary(channel):
    # Raw bytes in and out (no serializers), so the test can see that both messages are zero bytes.
    empty_call = channel.unary_unary("/grpc.testing.TestService/EmptyCall")
    response = empty_call(b"", timeout=RPC_TIMEOUT_S)
    assert response == b"", f"EmptyCall answered {len(response)} bytes; an empty message serializes to none"


def test_large_unary(stub):
    request = messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828))
    response = stub.UnaryCall(request, timeout=RPC_TIMEOUT_S)
    assert_zeros(response.payload.body, 314159, "UnaryCall response")


def test_client_streaming(stub):
    requests = [messages_pb2.StreamingInputCallRequest(payload=payload(n)) for n in REQUEST_SIZES]
    response = stub.StreamingInputCall(iter(requests), timeout=RPC_TIMEOUT_S)
    assert response.aggregated_payload_size == 74922


def test_server_streaming(stub):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=n) for n in RESPONSE_SIZES])
    call = stub.StreamingOutputCall(request, timeout=RPC_TIMEOUT_S)
    responses = list(call)
    assert [len(r.payload.body) for r in responses] == RESPONSE_SIZES
    for r, n in zip(responses, RESPONSE_SIZES):
        assert_zeros(r.payload.body, n, "StreamingOutputCall response")
    assert call.code() == StatusCode.OK


def test_ping_pong(stub):
    pinger = Pinger()
    call = stub.FullDuplexCall(pinger.requests(), timeout=RPC_TIMEOUT_S)
    try:
        for request_size, response_size in zip(REQUEST_SIZES, RESPONSE_SIZES):
            pinger.send(streaming_request(response_size, request_size))
            response = next(call)
            assert_zeros(response.payload.body, response_size, f"reply to the {request_size}-byte ping")
        pinger.half_close()
        rest = list(call)
        assert rest == [], f"{len(rest)} responses after the four replies; expected exactly four in all"
        assert call.code() == StatusCode.OK
    finally:
        pinger.half_close()
        call.cancel()


def test_empty_stream(stub):
    call = stub.FullDuplexCall(iter([]), timeout=RPC_TIMEOUT_S)
    responses = list(call)
    assert responses == [], f"expected no responses to an empty stream, got {len(responses)}"
    assert call.code() == StatusCode.OK


def test_custom_metadata_unary(stub):
    request = messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828))
    response, call = stub.UnaryCall.with_call(request, metadata=[ECHO_INITIAL, ECHO_TRAILING],
                                              timeout=RPC_TIMEOUT_S)
    assert_zeros(response.payload.body, 314159, "UnaryCall response")
    assert ECHO_INITIAL in call.initial_metadata(), f"initial metadata: {call.initial_metadata()}"
    assert ECHO_TRAILING in call.trailing_metadata(), f"trailing metadata: {call.trailing_metadata()}"


def test_custom_metadata_full_duplex(stub):
    call = stub.FullDuplexCall(iter([streaming_request(314159, 271828)]),
                               metadata=[ECHO_INITIAL, ECHO_TRAILING], timeout=RPC_TIMEOUT_S)
    responses = list(call)
    assert [len(r.payload.body) for r in responses] == [314159]
    assert ECHO_INITIAL in call.initial_metadata(), f"initial metadata: {call.initial_metadata()}"
    assert ECHO_TRAILING in call.trailing_metadata(), f"trailing metadata: {call.trailing_metadata()}"


def test_status_code_and_message(stub):
    status = messages_pb2.EchoStatus(code=2, message="test status message")
    err = rpc_error(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status),
                                           timeout=RPC_TIMEOUT_S), "UnaryCall with response_status")
    assert_status(err, StatusCode.UNKNOWN, "UnaryCall", "test status message")

    request = messages_pb2.StreamingOutputCallRequest(response_status=status)
    err = rpc_error(lambda: stub.FullDuplexCall(iter([request]), timeout=RPC_TIMEOUT_S),
                    "FullDuplexCall with response_status")
    assert_status(err, StatusCode.UNKNOWN, "FullDuplexCall", "test status message")


def test_special_status_message(stub):
    status = messages_pb2.EchoStatus(code=2, message=SPECIAL_STATUS_MESSAGE)
    err = rpc_error(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status),
                                           timeout=RPC_TIMEOUT_S), "UnaryCall with a special status message")
    assert_status(err, StatusCode.UNKNOWN, "UnaryCall", SPECIAL_STATUS_MESSAGE)


def test_unimplemented_method(stub):
    err = rpc_error(lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S),
                    "TestService/UnimplementedCall")
    assert_status(err, StatusCode.UNIMPLEMENTED, "TestService/UnimplementedCall")


def test_unimplemented_service(channel):
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    err = rpc_error(lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S),
                    "UnimplementedService/UnimplementedCall")
    assert_status(err, StatusCode.UNIMPLEMENTED, "UnimplementedService/UnimplementedCall")


def test_cancel_after_begin(stub):
    stop = threading.Event()
    try:
        future = stub.StreamingInputCall.future(blocking_requests(stop), timeout=RPC_TIMEOUT_S)
        assert future.cancel(), "the call had already finished before the client cancelled it"
        assert future.cancelled()
        assert future.code() == StatusCode.CANCELLED
    finally:
        stop.set()
    # The server took the cancellation in its stride: the same channel still works.
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()


def test_cancel_after_first_response(stub):
    stop = threading.Event()
    call = stub.FullDuplexCall(blocking_requests(stop, streaming_request(31415, 27182)), timeout=RPC_TIMEOUT_S)
    try:
        first = next(call)
        assert_zeros(first.payload.body, 31415, "first FullDuplexCall response")
        call.cancel()
        err = rpc_error(lambda: list(call), "FullDuplexCall after cancel")
        assert_status(err, StatusCode.CANCELLED, "FullDuplexCall cancelled after the first response")
    finally:
        stop.set()
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()


def test_timeout_on_sleeping_server(stub):
    stop = threading.Event()
    try:
        request = messages_pb2.StreamingOutputCallRequest(payload=payload(27182))
        err = rpc_error(lambda: list(stub.FullDuplexCall(blocking_requests(stop, request), timeout=0.001)),
                        "FullDuplexCall with a 1 ms deadline")
        assert_status(err, StatusCode.DEADLINE_EXCEEDED, "FullDuplexCall with a 1 ms deadline")
    finally:
        stop.set()
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()


# --- beyond the list: half duplex, compression, size, concurrency -------------------------------


def test_half_duplex(stub):
    requests = [streaming_request(n, 10) for n in RESPONSE_SIZES]
    call = stub.HalfDuplexCall(iter(requests), timeout=RPC_TIMEOUT_S)
    assert [len(r.payload.body) for r in call] == RESPONSE_SIZES
    assert call.code() == StatusCode.OK


def test_gzip_request_compression_large_unary(interop_server):
    with interop_server.channel(compression=grpc.Compression.Gzip) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        request = messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828),
                                             expect_compressed=messages_pb2.BoolValue(value=True))
        response = stub.UnaryCall(request, timeout=RPC_TIMEOUT_S)
        assert_zeros(response.payload.body, 314159, "UnaryCall response to a gzip request")


def test_gzip_client_streaming(interop_server):
    with interop_server.channel(compression=grpc.Compression.Gzip) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        requests = [messages_pb2.StreamingInputCallRequest(payload=payload(n)) for n in REQUEST_SIZES]
        response = stub.StreamingInputCall(iter(requests), timeout=RPC_TIMEOUT_S)
        assert response.aggregated_payload_size == 74922


def test_uncompressed_request_when_compression_expected_is_invalid(stub):
    # client_compressed_unary's probe: expect_compressed=true on a plain message is refused.
    request = messages_pb2.SimpleRequest(response_size=10, payload=payload(100),
                                         expect_compressed=messages_pb2.BoolValue(value=True))
    err = rpc_error(lambda: stub.UnaryCall(request, timeout=RPC_TIMEOUT_S), "uncompressed probe")
    assert_status(err, StatusCode.INVALID_ARGUMENT, "UnaryCall expecting compression, sent plain")


def test_server_compressed_unary(interop_server):
    # Whether the flag was really set is checked on the wire in test_wire.py; here the client
    # (which advertises gzip) must get the same answer either way.
    with interop_server.channel(compression=grpc.Compression.Gzip) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for compressed in (True, False):
            request = messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828),
                                                 response_compressed=messages_pb2.BoolValue(value=compressed))
            response = stub.UnaryCall(request, timeout=RPC_TIMEOUT_S)
            assert_zeros(response.payload.body, 314159, f"UnaryCall response (response_compressed={compressed})")


def test_server_compressed_streaming(interop_server):
    with interop_server.channel(compression=grpc.Compression.Gzip) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=31415, compressed=messages_pb2.BoolValue(value=True)),
            messages_pb2.ResponseParameters(size=92653, compressed=messages_pb2.BoolValue(value=False)),
        ])
        assert [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=RPC_TIMEOUT_S)] == [31415, 92653]


def test_three_mebibyte_messages_both_ways(stub):
    # Well past every default window: flow control has to work in both directions.
    size = 3 * 1024 * 1024
    request = messages_pb2.SimpleRequest(response_size=size, payload=payload(size))
    response = stub.UnaryCall(request, timeout=RPC_TIMEOUT_S)
    assert_zeros(response.payload.body, size, "3 MiB UnaryCall response")


def test_concurrent_large_unary(stub):
    # interop's concurrent_large_unary, scaled to a 2-core CI machine: many streams on one channel.
    request = messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828))
    futures = [stub.UnaryCall.future(request, timeout=RPC_TIMEOUT_S * 2) for _ in range(32)]
    for i, future in enumerate(futures):
        assert_zeros(future.result().payload.body, 314159, f"concurrent UnaryCall #{i}")


def test_concurrent_streams_from_many_channels(interop_server):
    def one_client(i: int) -> list[int]:
        with interop_server.channel() as channel:
            stub = test_pb2_grpc.TestServiceStub(channel)
            request = messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=n) for n in RESPONSE_SIZES])
            return [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=RPC_TIMEOUT_S * 2)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one_client, range(16)))
    assert results == [RESPONSE_SIZES] * 16


@pytest.mark.parametrize("size", [0, 1, 16383, 16384, 16385, 65535, 65536, 1 << 20])
def test_payload_sizes_around_frame_and_window_boundaries(stub, size):
    request = messages_pb2.SimpleRequest(response_size=size, payload=payload(size))
    response = stub.UnaryCall(request, timeout=RPC_TIMEOUT_S)
    assert_zeros(response.payload.body, size, f"{size}-byte UnaryCall response")
