"""HTTP/1.1 on the gRPC port: protocol detection (request line vs HTTP/2 preface, ALPN http/1.1 vs h2),
keep-alive, bounded and refused input (400, 404, 405, 413, 415, 431), the operator pages /healthz,
/readyz and /metrics (read with prometheus_client's parser, as Prometheus reads it), and the same
pages over HTTP/2 and TLS."""

from __future__ import annotations

import json
import re
import signal
import socket

import grpc
import pytest
from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from harness import RPC_TIMEOUT_S, SHUTDOWN_TIMEOUT_S
from http1 import connect, plain_server, raw_exchange  # noqa: F401 (a fixture)

StatusCode = grpc.StatusCode


def get(conn, path, method="GET", body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_keep_alive_serves_two_requests_on_one_connection(interop_server):
    conn = connect(interop_server)
    try:
        status, headers, body = get(conn, "/healthz")
        assert (status, body) == (200, b"ok\n"), (status, body)
        assert headers["content-type"].startswith("text/plain"), headers
        first_socket = conn.sock
        assert first_socket is not None, "the server closed a keep-alive connection after one request"
        status, _, body = get(conn, "/readyz")
        assert (status, body) == (200, b"ready\n"), (status, body)
        assert conn.sock is first_socket, "the second request needed a new connection"
    finally:
        conn.close()


def test_pages_answer_head_without_a_body(plain_server):
    conn = connect(plain_server)
    try:
        status, headers, body = get(conn, "/healthz", method="HEAD")
        assert status == 200 and body == b"" and headers["content-length"] == "3", (status, headers, body)
        status, _, body = get(conn, "/healthz")  # and the connection is still usable
        assert (status, body) == (200, b"ok\n")
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(plain_server):
    reply = raw_exchange(plain_server, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
                                       b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n"
                                       b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)
    assert statuses == [b"200", b"404", b"200"], reply
    assert reply.index(b"ok\n") < reply.index(b"no page") < reply.index(b"ready\n"), reply


def test_http_1_0_gets_an_answer_and_the_connection_closes(plain_server):
    reply = raw_exchange(plain_server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.0 200 ") and reply.endswith(b"\r\n\r\nok\n"), reply


def test_expect_100_continue(plain_server):
    from grpc.health.v1 import health_pb2

    from http1 import frame, parse_web_body

    body = frame(health_pb2.HealthCheckRequest().SerializeToString())
    with socket.create_connection((plain_server.host, plain_server.port), timeout=RPC_TIMEOUT_S) as sock:
        sock.sendall(b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                     b"content-type: application/grpc-web+proto\r\nconnection: close\r\n"
                     b"content-length: %d\r\n\r\n" % len(body))
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            assert chunk, f"closed before answering the expectation: {interim!r}"
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, chunked = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), reply
    # De-chunk, then read the gRPC-Web body.
    data, rest = b"", chunked
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        data, rest = data + rest[:size], rest[size + 2:]
    messages, trailers, seen = parse_web_body(data, text=False)
    assert seen and trailers["grpc-status"] == "0" and len(messages) == 1, (messages, trailers)


def test_bad_request_line_gets_400_and_the_connection_closes(plain_server):
    reply = raw_exchange(plain_server, b"GARBAGE WITHOUT A VERSION\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert b"connection: close" in head.lower(), head
    assert body.startswith(b"malformed HTTP/1.1 request"), body


def test_oversized_header_block_gets_431(plain_server):
    big = b"x-filler: " + b"a" * (20 << 10) + b"\r\n"
    reply = raw_exchange(plain_server, b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + big + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"request header fields exceed the limit of 16384 bytes" in reply, reply[:400]


def test_unknown_path_wrong_method_and_wrong_content_type(plain_server):
    conn = connect(plain_server)
    try:
        status, _, body = get(conn, "/nowhere")
        assert status == 404 and body == b"no page or method at /nowhere\n", (status, body)
        status, headers, body = get(conn, "/healthz", method="PUT", body=b"")
        assert status == 405 and "POST" in headers["allow"], (status, headers)
        status, headers, body = get(conn, "/grpc.testing.TestService/EmptyCall")
        assert status == 405 and headers["allow"] == "POST, OPTIONS", (status, headers, body)
        assert body == b"/grpc.testing.TestService/EmptyCall is an RPC method: call it with POST\n", body
        status, headers, body = get(conn, "/grpc.testing.TestService/EmptyCall", method="POST", body=b"hello",
                                    headers={"content-type": "text/plain"})
        assert status == 415 and b"content-type 'text/plain' is not served" in body, (status, body)
        # Native gRPC needs trailers, which HTTP/1.1 does not carry: refused with the way out named.
        status, headers, body = get(conn, "/grpc.testing.TestService/EmptyCall", method="POST",
                                    body=b"\0\0\0\0\0", headers={"content-type": "application/grpc"})
        assert status == 415 and b"over HTTP/1.1 use application/grpc-web" in body, (status, body)
        assert headers["grpc-status"] == "12", headers
        status, _, body = get(conn, "/healthz")
        assert status == 200, "the connection must still serve after refused requests"
    finally:
        conn.close()


def test_body_over_the_receive_limit_gets_413(servers):
    server = servers.get("limits", "h2c")  # --max-receive-message-bytes 1000
    conn = connect(server)
    try:
        status, headers, body = get(conn, "/grpc.testing.TestService/UnaryCall", method="POST", body=b"\0" * 5000,
                                    headers={"content-type": "application/grpc-web+proto"})
        assert status == 413, (status, body)
        assert body == b"request body of 5000 bytes exceeds the limit of 1005 bytes\n", body
        assert headers.get("connection") == "close", headers
    finally:
        conn.close()


def test_chunked_body_over_the_limit_gets_413_without_waiting_for_its_end(servers):
    server = servers.get("limits", "h2c")
    chunk = b"\0" * 2000
    # The body never ends: the server must answer and close on its own.
    reply = raw_exchange(server, b"POST /grpc.testing.TestService/UnaryCall HTTP/1.1\r\nhost: x\r\n"
                                 b"content-type: application/grpc-web+proto\r\ntransfer-encoding: chunked\r\n\r\n"
                                 + b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert reply.endswith(b"request body exceeds the limit of 1005 bytes\n"), reply[-200:]


def test_pages_over_http2_too(plain_server):
    # The pages are the router's, not HTTP/1.1's: an HTTP/2 GET reaches them as well.
    with plain_server.raw() as conn:
        conn.handshake()
        conn.request(1, [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/readyz")])
        stream = conn.response(1)
        assert stream.headers.get(":status") == "200", stream.headers
        assert stream.data == b"ready\n", stream.data


def metrics(server) -> dict[str, object]:
    conn = connect(server)
    try:
        status, headers, body = get(conn, "/metrics")
    finally:
        conn.close()
    assert status == 200, status
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
    return {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}


def sample(families, family: str, name: str, **labels) -> float:
    """The first sample of `name` with these labels (and maybe others); 0 when there is none, as
    for a family with no series yet, which the exposition leaves out."""
    values = [s.value for s in (families[family].samples if family in families else [])
              if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return values[0] if values else 0.0


def test_metrics_count_rpcs_by_method_and_code(interop_server):
    service = "grpc.testing.TestService"
    before = metrics(interop_server)
    with interop_server.channel() as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for _ in range(3):
            stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S)
        with pytest.raises(grpc.RpcError) as info:
            stub.UnaryCall(messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=3, message="no")),
                           timeout=RPC_TIMEOUT_S)
        assert info.value.code() == StatusCode.INVALID_ARGUMENT
    after = metrics(interop_server)
    assert {"grpc_server_started", "grpc_server_handled", "grpc_server_handling_seconds"} <= set(after), sorted(after)
    assert after["grpc_server_handled"].type == "counter" and after["grpc_server_handling_seconds"].type == "histogram"

    def delta(family, name, **labels):
        return sample(after, family, name, **labels) - sample(before, family, name, **labels)

    assert delta("grpc_server_handled", "grpc_server_handled_total", grpc_type="unary", grpc_service=service,
                 grpc_method="EmptyCall", grpc_code="OK") == 3
    assert delta("grpc_server_handled", "grpc_server_handled_total", grpc_service=service, grpc_method="UnaryCall",
                 grpc_code="InvalidArgument") == 1
    assert delta("grpc_server_started", "grpc_server_started_total", grpc_service=service, grpc_method="EmptyCall") == 3
    assert delta("grpc_server_handling_seconds", "grpc_server_handling_seconds_count", grpc_service=service, grpc_method="EmptyCall") == 3
    # A histogram's buckets are cumulative and end at +Inf with the count.
    buckets = [(s.labels["le"], s.value) for s in after["grpc_server_handling_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["grpc_method"] == "EmptyCall"]
    values = [v for _, v in buckets]
    assert values == sorted(values) and buckets[-1][0] == "+Inf", buckets
    assert buckets[-1][1] == sample(after, "grpc_server_handling_seconds", "grpc_server_handling_seconds_count",
                                    grpc_service=service, grpc_method="EmptyCall")


def test_sigterm_closes_a_connection_that_never_spoke(servers, session_dir):
    # With a grace period far past the fixture's shutdown deadline, only closing the silent,
    # undecided connection at once lets the server exit in time.
    config = session_dir / "long-grace.json"
    config.write_text(json.dumps({"limits": {"shutdown_grace_seconds": 600}}))
    server = servers.start("silent-client", ["--interop", "--config", str(config)], "h2c")
    try:
        _silent_client_then_sigterm(server)
    finally:
        server.kill()


def _silent_client_then_sigterm(server):
    with socket.create_connection((server.host, server.port), timeout=SHUTDOWN_TIMEOUT_S) as silent:
        conn = connect(server)  # a full exchange after it: the silent one has been accepted by now
        assert get(conn, "/healthz")[0] == 200
        conn.close()
        server.proc.send_signal(signal.SIGTERM)
        try:
            assert silent.recv(1) == b"", "the server sent bytes to a client that asked nothing"
        except ConnectionResetError:
            pass
    assert server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S) == 0


def test_metrics_total_the_tokens_the_answers_reported(plain_server):
    from prism.v1 import prism_pb2, prism_pb2_grpc

    from test_generate import png

    labels = {"provider": "local", "model": "local/mediainfo"}
    before = metrics(plain_server)
    request = prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[
            prism_pb2.Part(text="Describe these, twice over."),
            prism_pb2.Part(media=prism_pb2.Media(mime_type="image/png", data=png(40, 30)))])],
        route=prism_pb2.Route(model="local/mediainfo"))
    reported = {"input": 0, "output": 0}
    with plain_server.channel() as channel:
        for _ in range(2):
            for event in prism_pb2_grpc.PrismStub(channel).Generate(request, timeout=RPC_TIMEOUT_S):
                if event.WhichOneof("event") == "usage":
                    reported["input"] += event.usage.input_tokens
                    reported["output"] += event.usage.output_tokens
    assert reported["input"] > 0 and reported["output"] > 0, f"the example plugin reports usage: {reported}"
    after = metrics(plain_server)
    assert after["prism_tokens"].type == "counter", after["prism_tokens"]
    for direction, tokens in reported.items():
        got = (sample(after, "prism_tokens", "prism_tokens_total", direction=direction, **labels)
               - sample(before, "prism_tokens", "prism_tokens_total", direction=direction, **labels))
        assert got == tokens, f"{direction}: /metrics counted {got} tokens, the answers reported {tokens}"
