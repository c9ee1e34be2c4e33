"""OpenTelemetry traces and JSON logs of a running prism-server: OTLP/HTTP export to a receiver in
this process (otlp_receiver.py), configured by OTEL_EXPORTER_OTLP_ENDPOINT as a user would; the
vendor fakes of test_vendors.py record the traceparent the OpenAI plugin sends. A client's W3C
traceparent must put every span of its call into its trace, over gRPC, gRPC-Web and Connect."""

from __future__ import annotations

import json
import secrets

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from harness import RPC_TIMEOUT_S
from http1 import connect, web_call
from otlp_receiver import SPAN_KIND_CLIENT, SPAN_KIND_SERVER, STATUS_ERROR, OTLPReceiver
from test_vendors import OPENAI_MODEL, fakes, of_kind, ok, png, request, vendor_env, vendor_server  # noqa: F401 (fixtures)

SERVICE_NAME = "prism-interop-traces"


@pytest.fixture(scope="module")
def receiver():
    r = OTLPReceiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def traced_server(servers, fakes, receiver):
    """prism-server exporting traces to `receiver` (short batch delay, so spans arrive quickly),
    logging JSON lines at debug, its vendor plugins pointed at the fakes."""
    env = vendor_env(fakes) | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": SERVICE_NAME,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    server = servers.start("traces-h2c", ["--log-format", "json", "--log-level", "debug"], "h2c", env=env)
    try:
        yield server
    finally:
        server.stop()


def client_context() -> tuple[str, str, str]:
    """A new W3C trace context as a client would send it: (traceparent, trace id, span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def generate_ok(server, text: str, traceparent: str, what: str, **kwargs) -> list:
    """The events of a Generate of `text` to the OpenAI model sent with `traceparent`, which must end OK."""
    with server.channel() as channel:
        events = list(prism_pb2_grpc.PrismStub(channel).Generate(request(text, OPENAI_MODEL, **kwargs), timeout=RPC_TIMEOUT_S,
                                                                  metadata=[("traceparent", traceparent)]))
    ok(events, None, what)
    return events


def one(spans, name: str):
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return found[0]


def test_generate_trace_joins_the_client_and_reaches_the_vendor(traced_server, fakes, receiver):
    traceparent, trace_id, client_span = client_context()
    text = f"trace me {trace_id[:8]}"
    image = prism_pb2.Media(mime_type="image/png", data=png(64, 48), name="pic.png")
    with traced_server.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Generate(request(text, OPENAI_MODEL, media=[image]), timeout=RPC_TIMEOUT_S,
                                                          metadata=[("traceparent", traceparent), ("tracestate", "vendor=client")])
        events = list(call)
    ok(events, None, "traced Generate")
    usage = of_kind(events, "usage")[-1]
    assert usage.input_tokens > 0 and usage.output_tokens > 0, usage

    provider_name = f"chat {OPENAI_MODEL.split('/', 1)[1]}"
    spans = receiver.await_spans(trace_id, ["prism.v1.Prism/Generate", provider_name, "prism.plan", "prism.adapt fit"])
    rpc = one(spans, "prism.v1.Prism/Generate")
    assert rpc.kind == SPAN_KIND_SERVER
    assert rpc.parent_span_id == client_span, "the RPC span's parent must be the client's span"
    assert rpc.attributes["rpc.system"] == "grpc"
    assert rpc.attributes["rpc.service"] == "prism.v1.Prism" and rpc.attributes["rpc.method"] == "Generate"
    assert rpc.attributes["rpc.grpc.status_code"] == 0
    assert rpc.resource.get("service.name") == SERVICE_NAME, rpc.resource

    provider = one(spans, provider_name)
    assert provider.kind == SPAN_KIND_CLIENT
    assert provider.parent_span_id == rpc.span_id, "the provider call's span must be a child of the RPC span"
    assert provider.attributes["gen_ai.system"] == "openai"
    assert provider.attributes["gen_ai.operation.name"] == "chat"
    assert provider.attributes["gen_ai.request.model"] == "gpt-4o"
    assert provider.attributes["gen_ai.usage.input_tokens"] == usage.input_tokens
    assert provider.attributes["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert one(spans, "prism.plan").parent_span_id == rpc.span_id
    adapt = one(spans, "prism.adapt fit")
    assert adapt.parent_span_id == rpc.span_id and adapt.attributes["prism.media.mime_type"] == "image/png"

    # The vendor got the provider span's context: same trace, the provider span as parent.
    sent = fakes["openai"].requests(text)
    assert len(sent) == 1, sent
    vendor_parent = sent[0]["trace_context"].get("traceparent", "")
    assert vendor_parent.split("-")[1:3] == [trace_id, provider.span_id], \
        f"the vendor got traceparent {vendor_parent!r}; expected trace {trace_id}, parent {provider.span_id}"
    assert sent[0]["trace_context"].get("tracestate") == "vendor=client"


def test_failed_provider_call_marks_its_span(traced_server, fakes, receiver):
    traceparent, trace_id, _ = client_context()
    text = f"status-400 trace {trace_id[:8]}"
    with traced_server.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Generate(request(text, OPENAI_MODEL), timeout=RPC_TIMEOUT_S,
                                                          metadata=[("traceparent", traceparent)])
        with pytest.raises(grpc.RpcError) as err:
            list(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    spans = receiver.await_spans(trace_id, ["prism.v1.Prism/Generate", "chat gpt-4o"])
    assert one(spans, "prism.v1.Prism/Generate").attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    provider = one(spans, "chat gpt-4o")
    assert provider.status_code == STATUS_ERROR and "rejected" in provider.status_message, provider


@pytest.mark.parametrize("protocol", ["connect", "grpc-web"])
def test_http1_protocols_take_the_client_traceparent(traced_server, receiver, protocol):
    traceparent, trace_id, client_span = client_context()
    conn = connect(traced_server)
    try:
        if protocol == "connect":
            conn.request("POST", "/prism.v1.Prism/ListProviders", body=b"{}",
                         headers={"content-type": "application/json", "traceparent": traceparent})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body)
        else:
            answer = web_call(conn, "/prism.v1.Prism/ListProviders", b"", headers={"traceparent": traceparent})
            assert answer.status == 200 and answer.trailers.get("grpc-status") == "0", answer
    finally:
        conn.close()
    rpc = one(receiver.await_spans(trace_id, ["prism.v1.Prism/ListProviders"]), "prism.v1.Prism/ListProviders")
    assert rpc.parent_span_id == client_span and rpc.kind == SPAN_KIND_SERVER


def test_json_logs_carry_the_trace_id(traced_server, receiver):
    # A first answer of 429 makes the gateway retry, and log that inside the call's span.
    traceparent, trace_id, _ = client_context()
    text = f"once-429 json logs {trace_id[:8]}"
    generate_ok(traced_server, text, traceparent, "Generate after one 429")
    receiver.await_spans(trace_id, ["prism.v1.Prism/Generate"])
    lines = [line for line in traced_server.log_path.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    for record in records:
        assert isinstance(record, dict) and {"time", "level", "message", "logger"} <= record.keys(), record
    in_trace = [r for r in records if r.get("trace_id") == trace_id]
    assert in_trace, f"no log line carries trace_id {trace_id}; lines: {lines[-10:]}"
    assert any("failed before content" in r["message"] and r["level"] == "warning" for r in in_trace), in_trace
    # The call's one-line summary (written on the event loop once the call ends) carries them too.
    assert any(r["message"].startswith("/prism.v1.Prism/Generate OK") and r["logger"] == "prism" for r in in_trace), in_trace
    assert all(len(r.get("span_id", "")) == 16 for r in in_trace), in_trace


def test_untraced_server_sends_vendors_no_traceparent(vendor_server, fakes):
    """No OTEL_* endpoint: no tracer, and the plugin's requests carry no trace context."""
    traceparent, trace_id, _ = client_context()
    text = f"untraced {trace_id[:8]}"
    generate_ok(vendor_server, text, traceparent, "untraced Generate")
    sent = fakes["openai"].requests(text)
    assert len(sent) == 1 and sent[0]["trace_context"] == {}, sent


def test_shutdown_exports_the_spans_still_buffered(servers, fakes, receiver):
    """With a batch delay far longer than the test, spans leave only by the flush at shutdown:
    SIGTERM must export them before the process exits, and it must exit cleanly."""
    env = vendor_env(fakes) | {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint + "/v1/traces",
                               "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    server = servers.start("traces-flush-h2c", [], "h2c", env=env)
    traceparent, trace_id, _ = client_context()
    try:
        generate_ok(server, f"flush {trace_id[:8]}", traceparent, "Generate before shutdown")
        assert receiver.trace(trace_id) == [], "spans were exported before the batch delay or shutdown"
    finally:
        code = server.stop()
    assert code == 0, f"prism-server exited with {code}"
    spans = receiver.trace(trace_id)
    assert {"prism.v1.Prism/Generate", "chat gpt-4o"} <= {s.name for s in spans}, [s.name for s in spans]
    assert all(s.resource.get("service.name") == "prism-server" for s in spans), spans[0].resource
