"""The daemon's outer contract: one listening line on stdout, PRISM_LISTEN, and a graceful SIGTERM that
lets in-flight RPCs finish."""

from __future__ import annotations

import signal
import time

import grpc
import pytest
from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc

import h2raw
from harness import RPC_TIMEOUT_S, SHUTDOWN_TIMEOUT_S, PrismServer

StatusCode = grpc.StatusCode


@pytest.fixture
def own_server(servers, request):
    """A server for this test alone (it gets stopped by the test), on the transport given by
    indirect parametrization or h2c. Killed afterwards if the test left it running."""
    started: list[PrismServer] = []

    def start(args=("--interop",), transport=getattr(request, "param", "h2c"), **kwargs) -> PrismServer:
        server = servers.start(f"{request.node.name}-{len(started)}".replace("/", "_"), list(args), transport, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def test_prints_exactly_one_line_and_exits_zero_on_sigterm(own_server):
    server = own_server()
    with server.channel() as channel:
        test_pb2_grpc.TestServiceStub(channel).EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S)
    code = server.stop()
    assert code == 0, f"exit code {code} after SIGTERM; a graceful shutdown exits 0"
    assert len(server.stdout_lines) == 1, f"stdout should be the listening line alone, got {server.stdout_lines}"


@pytest.mark.parametrize("own_server", ["h2c", "tls"], indirect=True)
def test_sigterm_lets_in_flight_rpcs_finish(own_server):
    server = own_server()
    sizes = [1000, 2000, 3000, 4000]
    request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=n, interval_us=300_000) for n in sizes])
    with server.channel() as channel:
        call = test_pb2_grpc.TestServiceStub(channel).StreamingOutputCall(request, timeout=RPC_TIMEOUT_S)
        first = next(call)
        assert len(first.payload.body) == sizes[0]
        sigterm_at = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        rest = [len(r.payload.body) for r in call]  # about 0.9 s more, well within any grace period
        assert rest == sizes[1:], f"after SIGTERM the in-flight stream delivered {rest}, expected {sizes[1:]}"
        assert call.code() == StatusCode.OK, f"in-flight call ended with {call.code().name}: {call.details()!r}"
    code = server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    assert code == 0, f"exit code {code} after SIGTERM"
    took = time.monotonic() - sigterm_at
    assert took < SHUTDOWN_TIMEOUT_S, f"shutdown took {took:.1f}s"


def test_sigterm_sends_goaway_and_lets_the_stream_finish_on_the_wire(own_server):
    server = own_server()
    request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=100, interval_us=200_000) for _ in range(5)])
    with server.raw() as conn:
        conn.handshake()
        conn.request(1, h2raw.grpc_request_headers("/grpc.testing.TestService/StreamingOutputCall"),
                     h2raw.grpc_message(request.SerializeToString()))
        conn.read_until(lambda: len(conn.stream(1).data) > 0, 5, "the first response message")
        server.proc.send_signal(signal.SIGTERM)
        stream = conn.response(1, timeout=SHUTDOWN_TIMEOUT_S)
        assert conn.goaway is not None, f"no GOAWAY after SIGTERM; {conn.summary()}"
        assert conn.goaway[1] == h2raw.NO_ERROR and conn.goaway[0] >= 1, f"GOAWAY {conn.goaway}"
        assert stream.grpc_status == 0 and len(stream.messages()) == 5, \
            f"the in-flight stream should finish all 5 messages with OK; {conn.summary()}"
    assert server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S) == 0


def test_sigint_is_graceful_too(own_server):
    server = own_server()
    server.proc.send_signal(signal.SIGINT)
    code = server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    assert code == 0, f"exit code {code} after SIGINT"


def test_prism_listen_environment_variable(own_server):
    server = own_server(listen=None, env={"PRISM_LISTEN": "127.0.0.1:0"})
    with server.channel() as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        assert stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()
    assert server.stop() == 0
