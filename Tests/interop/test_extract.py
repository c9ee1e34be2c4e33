"""Extract end to end: the Python client asks, the real vendor plugins inside prism-server answer
through the fakes of tools/fakes/, and every answer is checked with Prism's own validator. The fakes'
model answers are scripted in the input text ("answer-N: <JSON>" for the N-th attempt; without a
script a fake answers a sample that fits the schema), so each test decides what the "model" gets
wrong, and reads back from the fake's log what the vendor received on each attempt."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import server_binary
from harness import RPC_TIMEOUT_S
from test_vendors import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, fakes, vendor_server  # noqa: F401 (fixtures)

INVOICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "line_items": {
            "type": "array",
            "items": {"$ref": "#/$defs/line"},
        },
    },
    "required": ["invoice_number", "total", "line_items"],
    "additionalProperties": False,
    "$defs": {
        "line": {
            "type": "object",
            "properties": {"description": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
            "required": ["description", "amount"],
            "additionalProperties": False,
        }
    },
}
VALID = {"invoice_number": "INV-17", "total": 30.5, "line_items": [{"description": "paper", "amount": 30.5}]}
NEGATIVE_AMOUNT = {"invoice_number": "INV-17", "total": 30.5, "line_items": [{"description": "paper", "amount": -3}]}


def script(marker: str, *answers) -> str:
    """An input text naming the test (so its log entries can be found) and the model's answers."""
    lines = [f"Invoice {marker}: paper, 30.50 EUR."]
    lines += [f"answer-{n}: {a if isinstance(a, str) else json.dumps(a)}" for n, a in enumerate(answers, 1)]
    return "\n".join(lines)


def extract(server, text: str, model: str, schema=INVOICE_SCHEMA, instructions: str = ""):
    """(ExtractResponse, None) or (None, grpc.RpcError), and the call's trailers."""
    req = prism_pb2.ExtractRequest(input=[prism_pb2.Part(text=text)],
                                   schema_json=schema if isinstance(schema, str) else json.dumps(schema),
                                   instructions=instructions, route=prism_pb2.Route(model=model))
    with server.channel() as channel:
        try:
            response, call = prism_pb2_grpc.PrismStub(channel).Extract.with_call(req, timeout=RPC_TIMEOUT_S)
            return response, None, dict(call.trailing_metadata() or ())
        except grpc.RpcError as err:
            return None, err, dict(err.trailing_metadata() or ())


def received(fake, marker: str) -> list[dict]:
    """The requests a fake received for one test, in order."""
    return [e for e in fake.entries() if "path" in e and marker in json.dumps(e.get("body"))]


def test_anthropic_forced_tool_answer_valid_first_time(vendor_server, fakes):
    response, err, trailers = extract(vendor_server, script("anthropic-ok", VALID), ANTHROPIC_MODEL)
    assert err is None, err
    assert json.loads(response.json) == VALID
    assert response.attempts == 1 and trailers.get("prism-extract-attempts") == "1"
    assert response.routed.model == ANTHROPIC_MODEL
    assert response.usage.input_tokens == 12 and response.usage.cost_usd_micros > 0
    [sent] = received(fakes["anthropic"], "anthropic-ok")
    body = sent["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "prism_json"}
    [tool] = body["tools"]
    expected = {k: v for k, v in INVOICE_SCHEMA.items() if k != "$schema"}
    assert tool["name"] == "prism_json" and tool["input_schema"] == expected
    assert body["temperature"] == 0


def test_repair_feeds_back_the_answer_and_the_violations(vendor_server, fakes):
    response, err, _ = extract(vendor_server, script("anthropic-repair", NEGATIVE_AMOUNT, VALID), ANTHROPIC_MODEL)
    assert err is None, err
    assert json.loads(response.json) == VALID
    assert response.attempts == 2
    assert response.usage.input_tokens == 24, "usage is summed over both attempts"
    first, second = received(fakes["anthropic"], "anthropic-repair")
    assert [m["role"] for m in first["body"]["messages"]] == ["user"]
    assert [m["role"] for m in second["body"]["messages"]] == ["user", "assistant", "user"]
    previous = second["body"]["messages"][1]["content"][0]["text"]
    assert json.loads(previous) == NEGATIVE_AMOUNT, "the model sees its own previous answer"
    feedback = second["body"]["messages"][2]["content"][0]["text"]
    assert "/line_items/0/amount" in feedback and "minimum" in feedback, feedback


def test_never_valid_is_failed_precondition_naming_the_paths(vendor_server, fakes):
    response, err, _ = extract(vendor_server, script("anthropic-never", NEGATIVE_AMOUNT, {"invoice_number": 17}), ANTHROPIC_MODEL)
    assert response is None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
    assert "2 attempts" in err.details() and "/invoice_number" in err.details(), err.details()
    assert len(received(fakes["anthropic"], "anthropic-never")) == 2, "one repair by default"


def test_an_answer_that_is_not_json_is_repaired(vendor_server, fakes):
    response, err, _ = extract(vendor_server, script("openai-notjson", "Sure! Here it is", VALID), OPENAI_MODEL)
    assert err is None, err
    assert json.loads(response.json) == VALID and response.attempts == 2
    second = received(fakes["openai"], "openai-notjson")[1]
    assert "not JSON" in second["body"]["messages"][-1]["content"][0]["text"]


def test_openai_strict_when_the_schema_fits_the_subset(vendor_server, fakes):
    response, err, _ = extract(vendor_server, script("openai-strict", VALID), OPENAI_MODEL)
    assert err is None, err
    assert json.loads(response.json) == VALID
    [sent] = received(fakes["openai"], "openai-strict")
    response_format = sent["body"]["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True


def test_openai_non_strict_outside_the_subset_still_validated(vendor_server, fakes):
    schema = dict(INVOICE_SCHEMA, additionalProperties=True, minProperties=1)
    response, err, _ = extract(vendor_server, script("openai-loose", NEGATIVE_AMOUNT, VALID), OPENAI_MODEL, schema=schema)
    assert err is None, err
    assert response.attempts == 2, "a non-strict answer is checked like any other"
    first = received(fakes["openai"], "openai-loose")[0]
    assert first["body"]["response_format"]["json_schema"]["strict"] is False


def test_gemini_answer_with_a_response_schema(vendor_server, fakes):
    response, err, _ = extract(vendor_server, script("gemini-ok"), GEMINI_MODEL)
    assert err is None, err
    answer = json.loads(response.json)
    assert set(answer) == {"invoice_number", "total", "line_items"} and response.attempts == 1
    [sent] = received(fakes["gemini"], "gemini-ok")
    assert "responseSchema" in json.dumps(sent["body"])


def test_a_non_object_root_is_wrapped_for_anthropic_and_unwrapped(vendor_server, fakes):
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2}
    response, err, _ = extract(vendor_server, script("anthropic-array", [3]), ANTHROPIC_MODEL, schema=schema)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "minItems" in err.details(), err
    response, err, _ = extract(vendor_server, script("anthropic-array2", [1, 2, 3]), ANTHROPIC_MODEL, schema=schema)
    assert err is None, err
    assert json.loads(response.json) == [1, 2, 3]
    [sent] = received(fakes["anthropic"], "anthropic-array2")
    tool = sent["body"]["tools"][0]
    assert tool["name"] == "prism_json_value" and tool["input_schema"]["properties"]["value"] == schema


@pytest.mark.parametrize("schema,named", [
    ({"type": "object", "properties": {"age": {"type": "integer", "minimum": "zero"}}}, "/properties/age/minimum"),
    ({"type": "objekt"}, "/type"),
    ({"$ref": "#/$defs/missing"}, "$ref"),
    ('{"type": "object",', "JSON"),
    ("", "schema_json"),
])
def test_an_invalid_schema_is_refused_before_any_vendor_call(vendor_server, fakes, schema, named):
    marker = "bad-schema-%d" % abs(hash(json.dumps(schema)))
    response, err, _ = extract(vendor_server, script(marker, VALID), ANTHROPIC_MODEL, schema=schema)
    assert response is None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert named in err.details(), err.details()
    assert received(fakes["anthropic"], marker) == []


def test_nothing_to_extract_from_is_invalid_argument(vendor_server):
    req = prism_pb2.ExtractRequest(schema_json=json.dumps(INVOICE_SCHEMA), route=prism_pb2.Route(model=ANTHROPIC_MODEL))
    with vendor_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as raised:
            prism_pb2_grpc.PrismStub(channel).Extract(req, timeout=RPC_TIMEOUT_S)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "input" in raised.value.details()


def test_repairs_come_from_the_config(servers, fakes, vendor_server, tmp_path):
    config = tmp_path / "prism.json"
    config.write_text(json.dumps({"extract": {"repairs": 2}}))
    env = dict(vendor_server.extra_env)
    server = servers.start("extract-repairs", ["--config", str(config)], "h2c", env=env)
    try:
        text = script("anthropic-three", NEGATIVE_AMOUNT, NEGATIVE_AMOUNT, VALID)
        response, err, _ = extract(server, text, ANTHROPIC_MODEL)
        assert err is None, err
        assert response.attempts == 3
    finally:
        server.stop()
    config.write_text(json.dumps({"extract": {"repairs": 4}}))
    bad = servers.start.__self__  # the pool, for a server that must refuse to start
    with pytest.raises(Exception) as refused:
        bad.start("extract-repairs-bad", ["--config", str(config)], "h2c", env=env)
    assert "extract.repairs" in str(refused.value)


def test_cli_prints_the_extracted_json(vendor_server, tmp_path):
    schema = tmp_path / "invoice.schema.json"
    schema.write_text(json.dumps(INVOICE_SCHEMA))
    invoice = tmp_path / "invoice.txt"
    invoice.write_text(script("cli-extract", VALID))
    cli = server_binary().parent / "prism"
    result = subprocess.run([str(cli), "extract", str(invoice), "--schema", str(schema), "--model", ANTHROPIC_MODEL,
                             "--server", vendor_server.target], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == VALID
    assert "1 attempt" in result.stderr
