"""gRPC-Web on the gRPC port, through the same method table, handlers and interceptors as gRPC: binary
and base64 text, over HTTP/1.1 (plaintext and TLS with ALPN http/1.1) and HTTP/2; unary and server
streaming; trailers as the last body frame, trailers-only errors; streaming-request methods refused;
API-key auth alike; CORS preflights and responses for allowed and refused origins."""

from __future__ import annotations

import base64
import json
import signal
import time

import pytest
from grpc.health.v1 import health_pb2
from grpc.testing import messages_pb2
from prism.v1 import prism_pb2

from conftest import API_KEY
from harness import SHUTDOWN_TIMEOUT_S
from http1 import connect, frame, parse_web_body, plain_server, web_call  # noqa: F401 (a fixture)
from test_generate import png

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
ALLOWED_ORIGIN = "https://app.example.com"
CONFIG_ORIGIN = "https://console.example.org"


@pytest.fixture(params=[False, True], ids=["binary", "text"])
def text(request):
    return request.param


def call(server, path, message, **kwargs):
    conn = connect(server)
    try:
        return web_call(conn, path, message, **kwargs)
    finally:
        conn.close()


def test_unary_health_check(interop_server, text):
    reply = call(interop_server, HEALTH_CHECK, health_pb2.HealthCheckRequest().SerializeToString(), text=text)
    assert reply.status == 200, reply
    want = "application/grpc-web-text+proto" if text else "application/grpc-web+proto"
    assert reply.headers["content-type"] == want, reply.headers
    assert reply.had_trailers_frame and reply.grpc_status == 0, reply
    assert len(reply.messages) == 1, reply.messages
    assert health_pb2.HealthCheckResponse.FromString(reply.messages[0]).status == health_pb2.HealthCheckResponse.SERVING


def test_unary_list_providers(interop_server, text):
    reply = call(interop_server, "/prism.v1.Prism/ListProviders", prism_pb2.ListProvidersRequest().SerializeToString(), text=text)
    assert reply.grpc_status == 0, (reply.grpc_status, reply.grpc_message)
    providers = prism_pb2.ListProvidersResponse.FromString(reply.messages[0]).providers
    assert "local/mediainfo" in {m.id for p in providers for m in p.models}, providers


def test_server_streaming_generate(interop_server, text):
    request = prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[
            prism_pb2.Part(text="What is this?"),
            prism_pb2.Part(media=prism_pb2.Media(mime_type="image/png", data=png(32, 16)))])],
        route=prism_pb2.Route(model="local/mediainfo"))
    reply = call(interop_server, "/prism.v1.Prism/Generate", request.SerializeToString(), text=text)
    assert reply.grpc_status == 0, (reply.grpc_status, reply.grpc_message)
    events = [prism_pb2.GenerateEvent.FromString(m) for m in reply.messages]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "routed" and "finished" in kinds, kinds
    assert "image/png: 32x16 pixels" in "".join(e.text.text for e in events), events


def test_server_streaming_output_call_sizes_and_order(interop_server, text):
    sizes = [10, 20000, 3]
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=n) for n in sizes])
    reply = call(interop_server, "/grpc.testing.TestService/StreamingOutputCall", request.SerializeToString(), text=text)
    assert reply.grpc_status == 0, (reply.grpc_status, reply.grpc_message)
    got = [len(messages_pb2.StreamingOutputCallResponse.FromString(m).payload.body) for m in reply.messages]
    assert got == sizes, got


def test_error_status_after_messages_is_in_the_trailers_frame(plain_server, text):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=5)],
        response_status=messages_pb2.EchoStatus(code=9, message="stop here: 100%"))
    reply = call(plain_server, "/grpc.testing.TestService/StreamingOutputCall", request.SerializeToString(), text=text)
    assert reply.had_trailers_frame, reply
    assert (reply.grpc_status, reply.grpc_message) == (9, "stop here: 100%"), reply.trailers


def test_unknown_method_is_a_trailers_only_unimplemented(plain_server, text):
    reply = call(plain_server, "/prism.v1.Prism/NoSuchMethod", b"", text=text)
    assert reply.status == 200 and reply.body == b"", reply
    assert reply.headers["grpc-status"] == "12", reply.headers
    assert reply.grpc_message == "unknown method NoSuchMethod for service prism.v1.Prism", reply.grpc_message


def test_streaming_request_methods_need_http2_grpc(plain_server):
    for path in ("/grpc.testing.TestService/StreamingInputCall", "/grpc.testing.TestService/FullDuplexCall"):
        reply = call(plain_server, path, b"")
        assert reply.grpc_status == 12, (path, reply.headers)
        assert "needs gRPC over HTTP/2" in reply.grpc_message, reply.grpc_message


def test_text_body_of_separately_padded_chunks(plain_server):
    framed = frame(health_pb2.HealthCheckRequest(service="grpc.health.v1.Health").SerializeToString())
    body = base64.b64encode(framed[:4]) + base64.b64encode(framed[4:])
    assert b"=" in body[:8], "the first chunk must carry padding for this test to mean anything"
    reply = call(plain_server, HEALTH_CHECK, b"", text=True, body=body)
    assert reply.grpc_status == 0, (reply.grpc_status, reply.grpc_message)


def test_bad_base64_is_invalid_argument(plain_server):
    reply = call(plain_server, HEALTH_CHECK, b"", text=True, body=b"AAAA*AAA")
    assert reply.grpc_status == 3 and "not valid base64" in reply.grpc_message, (reply.headers, reply.trailers)


def test_calls_and_pages_share_a_keep_alive_connection(plain_server):
    conn = connect(plain_server)
    try:
        for _ in range(3):
            reply = web_call(conn, HEALTH_CHECK, b"")
            assert reply.grpc_status == 0
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b"ok\n"
    finally:
        conn.close()


def test_grpc_web_over_http2(plain_server, text):
    body = frame(health_pb2.HealthCheckRequest().SerializeToString())
    if text:
        body = base64.b64encode(body)
    content_type = "application/grpc-web-text" if text else "application/grpc-web+proto"
    with plain_server.raw() as conn:
        conn.handshake()
        conn.request(1, [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
                         (":path", HEALTH_CHECK), ("content-type", content_type), ("x-grpc-web", "1")], body)
        stream = conn.response(1)
    assert len(stream.header_blocks) == 1, f"gRPC-Web sends no HTTP/2 trailers: {stream.header_blocks}"
    assert stream.headers[":status"] == "200" and stream.headers["content-type"].startswith(content_type), stream.headers
    messages, trailers, seen = parse_web_body(bytes(stream.data), text)
    assert seen and trailers["grpc-status"] == "0", trailers
    assert health_pb2.HealthCheckResponse.FromString(messages[0]).status == health_pb2.HealthCheckResponse.SERVING


# --- auth --------------------------------------------------------------------------------------


def test_auth_applies_to_grpc_web_alike(servers):
    server = servers.get("auth", "h2c")
    request = health_pb2.HealthCheckRequest().SerializeToString()
    missing = call(server, HEALTH_CHECK, request)
    assert missing.status == 200 and missing.headers.get("grpc-status") == "16", missing.headers
    assert "missing API key" in missing.grpc_message, missing.grpc_message
    wrong = call(server, HEALTH_CHECK, request, headers={"authorization": "Bearer nope"})
    assert wrong.grpc_status == 16 and wrong.grpc_message == "invalid API key", wrong.headers
    right = call(server, HEALTH_CHECK, request, headers={"authorization": f"Bearer {API_KEY}"})
    assert right.grpc_status == 0 and len(right.messages) == 1, (right.headers, right.trailers)


# --- CORS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cors_server(servers):
    server = servers.start("cors", ["--interop"], "h2c", env={"PRISM_CORS_ORIGINS": f" {ALLOWED_ORIGIN} ,https://other.example"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def config_cors_server(servers, session_dir):
    config = session_dir / "cors-config.json"
    config.write_text(json.dumps({"http": {"cors_origins": [CONFIG_ORIGIN]}}))
    server = servers.start("cors-config", ["--interop", "--config", str(config)], "h2c")
    yield server
    server.stop()


def preflight(server, origin):
    conn = connect(server)
    try:
        conn.request("OPTIONS", HEALTH_CHECK, headers={
            "origin": origin, "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,authorization"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_preflight_from_an_allowed_origin(cors_server):
    status, headers, _ = preflight(cors_server, ALLOWED_ORIGIN)
    assert status == 204, (status, headers)
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN, headers
    assert "POST" in headers["access-control-allow-methods"], headers
    allowed = {h.strip() for h in headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-grpc-web", "x-user-agent", "authorization", "grpc-timeout",
            "connect-protocol-version", "connect-timeout-ms"} <= allowed, allowed


def test_preflight_from_a_refused_origin_gets_no_cors_headers(cors_server):
    status, headers, body = preflight(cors_server, "https://evil.example")
    assert status == 403 and b"not allowed" in body, (status, body)
    assert not [h for h in headers if h.startswith("access-control-")], headers


def test_responses_carry_cors_headers_for_allowed_origins_only(cors_server):
    request = health_pb2.HealthCheckRequest().SerializeToString()
    allowed = call(cors_server, HEALTH_CHECK, request, headers={"origin": ALLOWED_ORIGIN})
    assert allowed.grpc_status == 0
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN, allowed.headers
    exposed = {h.strip() for h in allowed.headers["access-control-expose-headers"].split(",")}
    assert {"grpc-status", "grpc-message"} <= exposed, exposed
    # A trailers-only error must be readable by the page too.
    failed = call(cors_server, "/prism.v1.Prism/NoSuchMethod", b"", headers={"origin": ALLOWED_ORIGIN})
    assert failed.headers["grpc-status"] == "12" and failed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    refused = call(cors_server, HEALTH_CHECK, request, headers={"origin": "https://evil.example"})
    assert not [h for h in refused.headers if h.startswith("access-control-")], refused.headers


def test_cors_origins_from_the_config_file(config_cors_server):
    status, headers, _ = preflight(config_cors_server, CONFIG_ORIGIN)
    assert status == 204 and headers["access-control-allow-origin"] == CONFIG_ORIGIN, (status, headers)
    status, headers, _ = preflight(config_cors_server, ALLOWED_ORIGIN)
    assert status == 403 and "access-control-allow-origin" not in headers, (status, headers)


# --- lifecycle -----------------------------------------------------------------------------------


def read_frame(response) -> tuple[int, bytes]:
    """One gRPC-Web frame from a binary response body as it streams in."""
    prefix = response.read(5)
    assert len(prefix) == 5, f"the body ended inside a frame prefix: {prefix!r}"
    payload = response.read(int.from_bytes(prefix[1:], "big"))
    return prefix[0], payload


def slow_stream(sizes, interval_us):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=n, interval_us=interval_us) for n in sizes])
    return frame(request.SerializeToString())


def test_client_going_away_cancels_the_call(plain_server):
    from test_http1 import metrics, sample

    labels = {"grpc_service": "grpc.testing.TestService", "grpc_method": "StreamingOutputCall", "grpc_code": "Canceled"}
    before = sample(metrics(plain_server), "grpc_server_handled", "grpc_server_handled_total", **labels)
    conn = connect(plain_server)
    conn.request("POST", "/grpc.testing.TestService/StreamingOutputCall", body=slow_stream([10] * 100, 100_000),
                 headers={"content-type": "application/grpc-web+proto"})
    response = conn.getresponse()
    assert read_frame(response)[0] == 0
    conn.sock.close()  # gone mid-stream, 99 answers early
    conn.close()
    deadline = time.monotonic() + 10
    while sample(metrics(plain_server), "grpc_server_handled", "grpc_server_handled_total", **labels) == before:
        assert time.monotonic() < deadline, "the call went on after its client left (no Canceled counted in 10 s)"
        time.sleep(0.05)


def test_sigterm_lets_a_grpc_web_stream_finish(servers):
    server = servers.start("web-drain", ["--interop"], "h2c")
    try:
        conn = connect(server)
        sizes = [1000, 2000, 3000, 4000]
        conn.request("POST", "/grpc.testing.TestService/StreamingOutputCall", body=slow_stream(sizes, 300_000),
                     headers={"content-type": "application/grpc-web+proto"})
        response = conn.getresponse()
        flag, first = read_frame(response)
        assert flag == 0 and len(messages_pb2.StreamingOutputCallResponse.FromString(first).payload.body) == sizes[0]
        server.proc.send_signal(signal.SIGTERM)
        messages, trailers, seen = parse_web_body(response.read(), text=False)
        got = [len(messages_pb2.StreamingOutputCallResponse.FromString(m).payload.body) for m in messages]
        assert got == sizes[1:] and seen and trailers["grpc-status"] == "0", (got, trailers)
        conn.close()
        assert server.proc.wait(timeout=SHUTDOWN_TIMEOUT_S) == 0
    finally:
        server.kill()
