"""Connect with the binary codec on the gRPC port, through the same method table and interceptors.
Unary (application/proto): bare messages both ways, metadata in headers and trailers as trailer-
headers, errors as an HTTP status with Connect's JSON body, gzip bodies, connect-timeout-ms and the
protocol version checked. Streaming (application/connect+proto): envelopes and the end-stream JSON.
Client-streaming methods as envelopes in one body; bidirectional ones refused by name; over HTTP/1.1,
TLS and HTTP/2."""

from __future__ import annotations

import base64
import gzip
import json
import struct

import pytest
from grpc.health.v1 import health_pb2
from grpc.testing import messages_pb2
from prism.v1 import prism_pb2

from conftest import API_KEY
from http1 import connect, plain_server  # noqa: F401 (a fixture)
from http1 import frame as envelope
from test_generate import png

HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def post(server, path, body: bytes, content_type="application/proto", headers=None):
    conn = connect(server)
    try:
        sent = {"content-type": content_type, "connect-protocol-version": "1"}
        sent.update(headers or {})
        conn.request("POST", path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def error_of(status, headers, body):
    assert headers["content-type"] == "application/json", (status, headers, body)
    return json.loads(body)


def test_unary_health_check_and_list_providers(interop_server):
    status, headers, body = post(interop_server, HEALTH_CHECK, health_pb2.HealthCheckRequest().SerializeToString())
    assert status == 200 and headers["content-type"] == "application/proto", (status, headers, body)
    assert health_pb2.HealthCheckResponse.FromString(body).status == health_pb2.HealthCheckResponse.SERVING
    status, _, body = post(interop_server, "/prism.v1.Prism/ListProviders", b"")
    assert status == 200, (status, body)
    models = {m.id for p in prism_pb2.ListProvidersResponse.FromString(body).providers for m in p.models}
    assert "local/mediainfo" in models, models


def test_metadata_in_headers_and_trailers_as_trailer_headers(plain_server):
    request = messages_pb2.SimpleRequest(response_size=100)
    status, headers, body = post(plain_server, "/grpc.testing.TestService/UnaryCall", request.SerializeToString(), headers={
        "x-grpc-test-echo-initial": "hello", "x-grpc-test-echo-trailing-bin": base64.b64encode(b"\x0a\x0b").decode()})
    assert status == 200, (status, body)
    assert len(messages_pb2.SimpleResponse.FromString(body).payload.body) == 100
    assert headers["x-grpc-test-echo-initial"] == "hello", headers
    assert base64.b64decode(headers["trailer-x-grpc-test-echo-trailing-bin"] + "==") == b"\x0a\x0b", headers


def test_error_status_as_http_status_and_json(plain_server):
    request = messages_pb2.SimpleRequest(response_status=messages_pb2.EchoStatus(code=9, message='not now: "busy"\n'))
    status, headers, body = post(plain_server, "/grpc.testing.TestService/UnaryCall", request.SerializeToString())
    assert status == 400, (status, body)
    assert error_of(status, headers, body) == {"code": "failed_precondition", "message": 'not now: "busy"\n'}
    status, headers, body = post(plain_server, "/prism.v1.Prism/NoSuchMethod", b"")
    assert status == 501 and error_of(status, headers, body)["code"] == "unimplemented", (status, body)


def test_streaming_request_methods_and_other_codecs_are_refused_by_name(plain_server):
    status, headers, body = post(plain_server, "/prism.v1.Prism/Generate", b"")
    assert status == 415 and "application/connect+proto" in error_of(status, headers, body)["message"], body
    status, headers, body = post(plain_server, "/grpc.testing.TestService/FullDuplexCall", b"")
    assert status == 501 and "needs gRPC over HTTP/2" in error_of(status, headers, body)["message"], body
    status, _, body = post(plain_server, "/prism.v1.Prism/ListProviders", b"{}", content_type="application/xml")
    assert status == 415 and b"content-type 'application/xml' is not served" in body, (status, body)


def streamed(body: bytes) -> tuple[list[bytes], dict]:
    """Connect streaming's envelopes: messages (flag 0), then exactly one end-stream envelope (flag 2)."""
    messages, end, i = [], None, 0
    while i < len(body):
        assert end is None, f"bytes after the end-stream envelope: {body[i:]!r}"
        flag, length = struct.unpack(">BI", body[i:i + 5])
        payload = body[i + 5:i + 5 + length]
        assert len(payload) == length, "cut envelope"
        i += 5 + length
        if flag == 2:
            end = json.loads(payload)
        else:
            assert flag == 0, flag
            messages.append(payload)
    assert end is not None, "no end-stream envelope"
    return messages, end


def test_server_streaming_generate(interop_server):
    request = prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[
            prism_pb2.Part(text="What is this?"), prism_pb2.Part(media=prism_pb2.Media(mime_type="image/png", data=png(24, 12)))])],
        route=prism_pb2.Route(model="local/mediainfo"))
    status, headers, body = post(interop_server, "/prism.v1.Prism/Generate", envelope(request.SerializeToString()),
                                 content_type="application/connect+proto")
    assert status == 200 and headers["content-type"] == "application/connect+proto", (status, headers)
    messages, end = streamed(body)
    assert end == {}, end
    events = [prism_pb2.GenerateEvent.FromString(m) for m in messages]
    assert events[0].WhichOneof("event") == "routed" and "image/png: 24x12 pixels" in "".join(e.text.text for e in events)


def test_streaming_errors_and_trailers_in_the_end_stream_envelope(plain_server):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=3)],
        response_status=messages_pb2.EchoStatus(code=8, message="slow down"))
    status, _, body = post(plain_server, "/grpc.testing.TestService/StreamingOutputCall", envelope(request.SerializeToString()),
                           content_type="application/connect+proto",
                           headers={"x-grpc-test-echo-trailing-bin": base64.b64encode(b"\x01\x02").decode()})
    assert status == 200, (status, body)
    messages, end = streamed(body)
    assert len(messages) == 1, messages
    assert end["error"] == {"code": "resource_exhausted", "message": "slow down"}, end
    assert [base64.b64decode(v) for v in end["metadata"]["x-grpc-test-echo-trailing-bin"]] == [b"\x01\x02"], end
    # Refused before any message: still 200, the error in the only envelope.
    status, _, body = post(plain_server, "/prism.v1.Prism/NoSuchMethod", envelope(b""), content_type="application/connect+proto")
    assert status == 200 and streamed(body) == ([], {"error": {"code": "unimplemented",
                                                               "message": "unknown method NoSuchMethod for service prism.v1.Prism"}})


def test_gzip_body(plain_server):
    request = messages_pb2.SimpleRequest(response_size=7, payload=messages_pb2.Payload(body=bytes(5000)))
    status, _, body = post(plain_server, "/grpc.testing.TestService/UnaryCall", gzip.compress(request.SerializeToString()),
                           headers={"content-encoding": "gzip"})
    assert status == 200, (status, body)
    assert len(messages_pb2.SimpleResponse.FromString(body).payload.body) == 7
    status, headers, body = post(plain_server, HEALTH_CHECK, b"\x00garbage", headers={"content-encoding": "gzip"})
    assert status == 400 and "gzip" in error_of(status, headers, body)["message"], (status, body)


def test_timeout_and_version_headers_are_checked(plain_server):
    status, headers, body = post(plain_server, HEALTH_CHECK, b"", headers={"connect-timeout-ms": "soon"})
    assert status == 400 and error_of(status, headers, body) == {
        "code": "invalid_argument", "message": "malformed connect-timeout-ms 'soon'"}, body
    status, _, body = post(plain_server, HEALTH_CHECK, b"", headers={"connect-timeout-ms": "5000"})
    assert status == 200, (status, body)
    status, headers, body = post(plain_server, HEALTH_CHECK, b"", headers={"connect-protocol-version": "2"})
    assert status == 400 and "connect-protocol-version '2'" in error_of(status, headers, body)["message"], body


def test_auth_applies_to_connect_alike(servers):
    server = servers.get("auth", "h2c")
    status, headers, body = post(server, HEALTH_CHECK, b"")
    assert status == 401 and error_of(status, headers, body)["code"] == "unauthenticated", (status, body)
    status, _, body = post(server, HEALTH_CHECK, b"", headers={"authorization": f"Bearer {API_KEY}"})
    assert status == 200, (status, body)


def test_connect_over_http2(plain_server):
    with plain_server.raw() as conn:
        conn.handshake()
        conn.request(1, [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"), (":path", HEALTH_CHECK),
                         ("content-type", "application/proto"), ("connect-protocol-version", "1")], b"")
        stream = conn.response(1)
    assert stream.headers[":status"] == "200" and stream.headers["content-type"] == "application/proto", stream.headers
    assert len(stream.header_blocks) == 1, stream.header_blocks
    assert health_pb2.HealthCheckResponse.FromString(bytes(stream.data)).status == health_pb2.HealthCheckResponse.SERVING


# --- the JSON codec: checked against json_format on the same answers over gRPC -----------------


def test_json_unary_equals_json_format_of_the_grpc_answer(interop_server):
    from google.protobuf import json_format
    from prism.v1 import prism_pb2_grpc

    status, headers, body = post(interop_server, "/prism.v1.Prism/ListProviders", b"{}", content_type="application/json")
    assert status == 200 and headers["content-type"] == "application/json", (status, headers, body)
    with interop_server.channel() as channel:
        grpc_answer = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=20)
    assert json.loads(body) == json_format.MessageToDict(grpc_answer), body


def test_json_streaming_generate_equals_json_format_of_the_grpc_events(plain_server):
    from google.protobuf import json_format
    from prism.v1 import prism_pb2_grpc

    request = prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[
            prism_pb2.Part(text="What is this?"), prism_pb2.Part(media=prism_pb2.Media(mime_type="image/png", data=png(20, 10)))])],
        route=prism_pb2.Route(model="local/mediainfo"), max_tokens=100, labels={"team": "web"})
    status, headers, body = post(plain_server, "/prism.v1.Prism/Generate",
                                 envelope(json_format.MessageToJson(request, indent=None).encode()),
                                 content_type="application/connect+json")
    assert status == 200 and headers["content-type"] == "application/connect+json", (status, headers)
    messages, end = streamed(body)
    assert end == {}, end
    with plain_server.channel() as channel:
        grpc_events = list(prism_pb2_grpc.PrismStub(channel).Generate(request, timeout=20))
    assert [json.loads(m) for m in messages] == [json_format.MessageToDict(e) for e in grpc_events]
    assert "usage" in json.loads(messages[-2]) and isinstance(json.loads(messages[-2])["usage"]["outputTokens"], str), \
        "64-bit counts are JSON strings"


def test_json_that_does_not_fit_names_the_field(plain_server):
    status, headers, body = post(plain_server, "/prism.v1.Prism/ListProviders", b'{"verbose": true}', content_type="application/json")
    error = error_of(status, headers, body)
    assert status == 400 and error["code"] == "invalid_argument", body
    assert error["message"].startswith("prism.v1.ListProvidersRequest JSON: verbose: ") and '"verbose"' in error["message"], error
    body = envelope(b'{"messages": [{"role": "ROLE_ALIEN"}]}')
    status, _, reply = post(plain_server, "/prism.v1.Prism/Generate", body, content_type="application/connect+json")
    assert status == 200, (status, reply)
    messages, end = streamed(reply)
    assert messages == [] and end["error"]["code"] == "invalid_argument", end
    assert end["error"]["message"].startswith("prism.v1.GenerateRequest JSON: messages[0].role: ") and "ROLE_ALIEN" in end["error"]["message"], end


def test_client_streaming_over_connect_streaming(plain_server):
    """A client stream travels as envelopes in one request body (so over HTTP/1.1 too); the answer is
    one message envelope and the end-stream envelope. gRPC's StreamingInputCall sums the payloads."""
    sizes = (10, 2000, 0, 31415)
    body = b"".join(envelope(messages_pb2.StreamingInputCallRequest(payload=messages_pb2.Payload(body=bytes(n))).SerializeToString())
                    for n in sizes)
    status, headers, reply = post(plain_server, "/grpc.testing.TestService/StreamingInputCall", body, content_type="application/connect+proto")
    assert status == 200 and headers["content-type"] == "application/connect+proto", (status, headers, reply)
    (message,), end = streamed(reply)
    assert end == {} and messages_pb2.StreamingInputCallResponse.FromString(message).aggregated_payload_size == sum(sizes)


def test_index_document_over_connect_json(plain_server):
    """What the console does: IndexDocument's header and data chunks as JSON envelopes in one body,
    the IndexDocumentResponse as JSON; then Query retrieves from it."""
    text = b"# Keys\n\nRotate the signing key every ninety days.\n"
    body = envelope(json.dumps({"header": {"index": "connect-json", "documentId": "keys", "mimeType": "text/markdown"}}).encode())
    body += b"".join(envelope(json.dumps({"data": base64.b64encode(text[i:i + 16]).decode()}).encode()) for i in range(0, len(text), 16))
    status, headers, reply = post(plain_server, "/prism.v1.Prism/IndexDocument", body, content_type="application/connect+json")
    assert status == 200 and headers["content-type"] == "application/connect+json", (status, headers, reply)
    (message,), end = streamed(reply)
    assert end == {} and json.loads(message) == {"documentId": "keys", "chunks": 1}, (message, end)
    query = envelope(json.dumps({"index": "connect-json", "question": "how often is the key rotated?", "retrieveOnly": True}).encode())
    status, _, reply = post(plain_server, "/prism.v1.Prism/Query", query, content_type="application/connect+json")
    messages, end = streamed(reply)
    hits = [json.loads(m)["hits"] for m in messages if "hits" in json.loads(m)]
    assert end == {} and hits[0]["text"][0]["documentId"] == "keys", (messages, end)
    # A bad chunk ends the call with the error in the end-stream envelope, naming the field.
    status, _, reply = post(plain_server, "/prism.v1.Prism/IndexDocument", envelope(b'{"header": {"index": 7}}'),
                            content_type="application/connect+json")
    messages, end = streamed(reply)
    assert messages == [] and end["error"]["code"] == "invalid_argument" and "header.index" in end["error"]["message"], end


def test_a_bare_curl_to_a_streaming_method_is_told_what_to_send(plain_server):
    """`curl -d JSON` (a form's content-type) and `curl --json` (Connect unary) to Generate, which is
    server-streaming: 415 naming the streaming content-type and the envelope, as a Connect error
    for the JSON one; the same for IndexDocument (client-streaming) and for a unary method."""
    request = b'{"messages": [{"role": "ROLE_USER", "parts": [{"text": "hi"}]}]}'
    status, headers, body = post(plain_server, "/prism.v1.Prism/Generate", request, content_type="application/json",
                                 headers={"accept": "application/json"})
    error = error_of(status, headers, body)
    assert status == 415 and headers["accept-post"] == "application/connect+json, application/connect+proto", (status, headers)
    assert error["code"] == "unimplemented", error
    assert error["message"].startswith("content-type 'application/json' is Connect unary, which carries one request and one "
                                       "response message; /prism.v1.Prism/Generate is server-streaming: send content-type "
                                       "application/connect+json"), error
    assert "a 0 byte, the message's length as 4 bytes big-endian, then the message" in error["message"], error
    status, headers, body = post(plain_server, "/prism.v1.Prism/Generate", request, content_type="application/x-www-form-urlencoded")
    assert status == 415 and body.decode().startswith(
        "content-type 'application/x-www-form-urlencoded' is not served: /prism.v1.Prism/Generate is server-streaming: "
        "send content-type application/connect+json"), body
    status, headers, body = post(plain_server, "/prism.v1.Prism/IndexDocument", b"{}", content_type="application/json")
    assert status == 415 and "/prism.v1.Prism/IndexDocument is client-streaming: send content-type application/connect+json" \
        in error_of(status, headers, body)["message"], body
    status, headers, body = post(plain_server, "/prism.v1.Prism/ListProviders", b"{}", content_type="application/x-www-form-urlencoded")
    assert status == 415 and "/prism.v1.Prism/ListProviders is unary: send its request as JSON with content-type application/json" \
        in body.decode(), body
