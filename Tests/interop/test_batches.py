"""Durable batches from the Python grpcio client, against the real prism-server, the real vendor
plugins and the vendor fakes (test_vendors.py's fixtures), and the example plugin's local engine
(local/mediainfo): SubmitBatch → every result exactly once per custom_id and exactly one vendor batch
(OpenAI, Anthropic, Gemini) or the normal call path (local); results streamed while a batch runs;
cancel; bad submits; retention; the CLI. Crashes and size are in test_batch_crashes.py."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
import time
import uuid
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool, server_binary
from harness import RPC_TIMEOUT_S, rpc_error
from test_vendors import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, Fake, fakes, png, request, vendor_env  # noqa: F401

LOCAL_MODEL = "local/mediainfo"
# How long a batch may take to finish: a vendor batch needs three polls of the fake (about 4 s of
# backoff); generous for a busy 2-core machine.
FINISH_DEADLINE_S = 90.0
FINISHED = {prism_pb2.BATCH_STATE_DONE, prism_pb2.BATCH_STATE_CANCELLED, prism_pb2.BATCH_STATE_FAILED}
# The batch discount the gateway applies to vendor batch items (all three vendors bill half).
BATCH_PRICE_FACTOR = 0.5


def start(servers: ServerPool, fakes, name: str, session_dir: Path, batches: dict | None = None):
    """A prism-server whose vendor plugins talk to the fakes; `batches` goes to the config file.
    The same `name` means the same PRISM_DATA_DIR, so a restart finds the batches."""
    args = []
    if batches is not None:
        config = session_dir / f"{name}.json"
        config.write_text(json.dumps({"batches": batches}))
        args = ["--config", str(config)]
    return servers.start(name, args, "h2c", env=vendor_env(fakes))


@pytest.fixture(scope="module")
def batch_server(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "batches-h2c", session_dir)
    try:
        yield server
    finally:
        server.stop()


def stub(server):
    return prism_pb2_grpc.PrismStub(server.channel())


def item(custom_id: str, text: str, model: str) -> prism_pb2.BatchItem:
    return prism_pb2.BatchItem(custom_id=custom_id, generate=request(text, model))


def items(prefix: str, model: str, n: int) -> list[prism_pb2.BatchItem]:
    return [item(f"{prefix}-{i}", f"{prefix} question {i}", model) for i in range(n)]


def submit(server, batch_items, label: str = "") -> prism_pb2.Batch:
    return stub(server).SubmitBatch(prism_pb2.SubmitBatchRequest(items=batch_items, label=label), timeout=RPC_TIMEOUT_S)


def get(server, batch_id: str) -> prism_pb2.Batch:
    return stub(server).GetBatch(prism_pb2.GetBatchRequest(id=batch_id), timeout=RPC_TIMEOUT_S)


def wait_finished(server, batch_id: str, deadline_s: float = FINISH_DEADLINE_S) -> prism_pb2.Batch:
    deadline = time.monotonic() + deadline_s
    while True:
        batch = get(server, batch_id)
        if batch.state in FINISHED:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} not finished after {deadline_s}s: {batch}"
        time.sleep(0.1)


def results(server, batch_id: str, timeout: float = FINISH_DEADLINE_S) -> list[prism_pb2.BatchResult]:
    """Every result StreamBatchResults sends, read to the stream's end (the batch's end)."""
    call = stub(server).StreamBatchResults(prism_pb2.GetBatchRequest(id=batch_id), timeout=timeout)
    return list(call)


def by_custom_id(got: list[prism_pb2.BatchResult], expected: list[str]) -> dict[str, prism_pb2.BatchResult]:
    """The results keyed by custom_id, after checking each expected id came exactly once."""
    ids = [r.custom_id for r in got]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not duplicates, f"custom_ids answered more than once: {duplicates[:10]}"
    assert sorted(ids) == sorted(expected), f"missing {sorted(set(expected) - set(ids))[:10]}, unexpected {sorted(set(ids) - set(expected))[:10]}"
    return {r.custom_id: r for r in got}


def openai_batches(fakes, batch_id: str) -> list[dict]:
    """The vendor batches the OpenAI fake created for `batch_id` (named in metadata.description)."""
    return [e for e in fakes["openai"].entries() if e.get("path") == "/v1/batches" and e.get("method") == "POST"
            and batch_id in json.dumps((e.get("body") or {}).get("metadata") or {})]


def prices(server) -> dict[str, tuple[int, int]]:
    listing = stub(server).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
    return {m.id: (m.pricing.input_usd_micros_per_million_tokens, m.pricing.output_usd_micros_per_million_tokens)
            for p in listing.providers for m in p.models}


# --- vendor batches ---------------------------------------------------------------------------


def test_openai_batch_answers_every_item_once_from_one_vendor_batch_at_the_batch_price(batch_server, fakes):
    prefix = f"oa-{uuid.uuid4().hex[:6]}"
    batch = submit(batch_server, items(prefix, OPENAI_MODEL, 5), label="nightly")
    assert batch.id and batch.total == 5 and batch.label == "nightly", batch
    assert batch.state in (prism_pb2.BATCH_STATE_QUEUED, prism_pb2.BATCH_STATE_RUNNING), batch
    got = by_custom_id(results(batch_server, batch.id), [f"{prefix}-{i}" for i in range(5)])
    done = get(batch_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_DONE and (done.succeeded, done.failed, done.cancelled) == (5, 0, 0), done
    assert done.finished_at >= done.created_at > 0, done
    created = openai_batches(fakes, batch.id)
    assert len(created) == 1, f"expected one vendor batch, the fake saw {len(created)}"
    assert len(done.vendor_batch_ids) == 1 and done.vendor_batch_ids[0].startswith("batch_"), done
    price_in, price_out = prices(batch_server)[OPENAI_MODEL]
    for custom_id, result in got.items():
        assert result.WhichOneof("result") == "text" and result.text, result
        u = result.usage
        assert u.input_tokens > 0 and u.output_tokens > 0, u
        list_price = (u.input_tokens * price_in + u.output_tokens * price_out) // 1_000_000
        assert u.cost_usd_micros == int(list_price * BATCH_PRICE_FACTOR + 0.5), (u, list_price)
        assert u.saved_usd_micros == list_price - u.cost_usd_micros > 0, (u, list_price)


@pytest.mark.parametrize("model,kind", [(ANTHROPIC_MODEL, "anthropic"), (GEMINI_MODEL, "gemini")])
def test_anthropic_and_gemini_batches_answer_every_item_once(batch_server, fakes, model, kind):
    prefix = f"{kind}-{uuid.uuid4().hex[:6]}"
    batch = submit(batch_server, items(prefix, model, 3))
    got = by_custom_id(results(batch_server, batch.id), [f"{prefix}-{i}" for i in range(3)])
    assert all(r.WhichOneof("result") == "text" and r.text for r in got.values()), got
    done = get(batch_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_DONE and done.succeeded == 3 and len(done.vendor_batch_ids) == 1, done
    creates = [e for e in fakes[kind].entries() if e.get("kind") == "batch-create"
               and any(prefix in (r.get("text") or "") for r in e.get("requests") or [])]
    assert len(creates) == 1, f"expected one {kind} vendor batch, the fake saw {len(creates)}"


def test_vendor_batch_items_are_fitted_at_submit_as_generate_fits_them(batch_server, fakes):
    prefix = f"fit-{uuid.uuid4().hex[:6]}"
    photo = prism_pb2.Media(mime_type="image/png", data=png(3000, 1000), name="wide.png")
    batch = submit(batch_server, [prism_pb2.BatchItem(custom_id=f"{prefix}-0", generate=request(f"{prefix} describe", OPENAI_MODEL, media=[photo]))])
    by_custom_id(results(batch_server, batch.id), [f"{prefix}-0"])
    uploads = [e for e in fakes["openai"].entries() if e.get("path") == "/v1/files" and prefix in json.dumps(e.get("lines") or [])]
    assert len(uploads) == 1, uploads
    images = uploads[0]["lines"][0]["body"]["images"]
    assert len(images) == 1 and 0 < images[0]["width"] <= 2048 and abs(images[0]["width"] / images[0]["height"] - 3.0) < 0.05, images


# --- the normal call path ---------------------------------------------------------------------


def test_local_engine_batch_runs_through_the_normal_call_path(batch_server):
    prefix = f"local-{uuid.uuid4().hex[:6]}"
    batch = submit(batch_server, items(prefix, LOCAL_MODEL, 20))
    got = by_custom_id(results(batch_server, batch.id), [f"{prefix}-{i}" for i in range(20)])
    assert all(r.WhichOneof("result") == "text" and r.text for r in got.values()), list(got.values())[:2]
    done = get(batch_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_DONE and done.succeeded == 20 and not done.vendor_batch_ids, done


def test_an_item_that_cannot_run_fails_alone_with_generates_status(batch_server):
    prefix = f"mixed-{uuid.uuid4().hex[:6]}"
    batch = submit(batch_server, [item(f"{prefix}-ok", "fine", LOCAL_MODEL), item(f"{prefix}-bad", "nowhere", "nobody/none")])
    got = by_custom_id(results(batch_server, batch.id), [f"{prefix}-ok", f"{prefix}-bad"])
    assert got[f"{prefix}-ok"].WhichOneof("result") == "text", got
    bad = got[f"{prefix}-bad"]
    assert bad.WhichOneof("result") == "error" and bad.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], bad
    assert "nobody/none" in bad.error.message, bad
    done = get(batch_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_DONE and (done.succeeded, done.failed) == (1, 1), done


def test_an_unavailable_provider_is_tried_again_later_before_the_item_fails(servers: ServerPool, session_dir: Path):
    """A keyless OpenAI-compatible server (no batch API: the normal path) that answers 503: the
    item runs four times (each the Generator's two attempts), 2, 4 and 8 s apart, then fails
    UNAVAILABLE; the other item of the batch is answered meanwhile."""
    fake = Fake("openai_fake.py", "", session_dir / "batches-keyless").start()
    server = None
    try:
        server = servers.start("batches-keyless-h2c", [], "h2c", env={
            "OPENAI_API_KEY": "", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1", "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        prefix = f"retry-{uuid.uuid4().hex[:6]}"
        down, fine = f"{prefix} status-503", f"{prefix} fine"
        batch = submit(server, [item("down", down, "openai/local"), item("fine", fine, "openai/local")])
        got = by_custom_id(results(server, batch.id), ["down", "fine"])
        assert got["fine"].WhichOneof("result") == "text", got["fine"]
        assert got["down"].error.code == grpc.StatusCode.UNAVAILABLE.value[0], got["down"]
        assert len(fake.requests(down)) == 4 * 2, [e.get("time") for e in fake.requests(down)]
        assert not get(server, batch.id).vendor_batch_ids
    finally:
        if server is not None:
            server.stop()
        fake.stop()


def test_results_stream_while_the_batch_runs(batch_server):
    """Local items finish long before the vendor batch (three polls of the fake): their results
    must reach an open stream while the batch is still running."""
    prefix = f"live-{uuid.uuid4().hex[:6]}"
    batch = submit(batch_server, items(prefix + "-l", LOCAL_MODEL, 3) + items(prefix + "-v", OPENAI_MODEL, 2))
    call = stub(batch_server).StreamBatchResults(prism_pb2.GetBatchRequest(id=batch.id), timeout=FINISH_DEADLINE_S)
    seen, states_at_first = [], None
    for result in call:
        if not seen:
            states_at_first = get(batch_server, batch.id)
        seen.append(result.custom_id)
    assert states_at_first.state == prism_pb2.BATCH_STATE_RUNNING, f"first result came only once the batch was {states_at_first}"
    assert seen[0].startswith(prefix + "-l"), seen
    by_custom_id([prism_pb2.BatchResult(custom_id=c) for c in seen],
                 [f"{prefix}-l-{i}" for i in range(3)] + [f"{prefix}-v-{i}" for i in range(2)])


def test_extract_items_answer_json_valid_against_their_schema(batch_server):
    prefix = f"ex-{uuid.uuid4().hex[:6]}"
    schema = json.dumps({"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]})
    extract = prism_pb2.ExtractRequest(input=[prism_pb2.Part(text=f"{prefix}: the invoice total is 42")], schema_json=schema,
                                       route=prism_pb2.Route(model=OPENAI_MODEL))
    batch = submit(batch_server, [prism_pb2.BatchItem(custom_id=f"{prefix}-0", extract=extract)])
    got = by_custom_id(results(batch_server, batch.id), [f"{prefix}-0"])[f"{prefix}-0"]
    assert got.WhichOneof("result") == "extract", got
    assert isinstance(json.loads(got.extract.json).get("total"), (int, float)), got.extract
    assert got.extract.attempts >= 1 and got.usage.input_tokens > 0, got


# --- bad requests -----------------------------------------------------------------------------


def test_a_duplicate_custom_id_is_invalid_argument_naming_it(batch_server):
    batch_items = [item("a", "one", LOCAL_MODEL), item("b", "two", LOCAL_MODEL), item("a", "three", LOCAL_MODEL)]
    err = rpc_error(lambda: submit(batch_server, batch_items), "duplicate custom_id")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert "items[2].custom_id 'a'" in err.details() and "items[0]" in err.details(), err.details()


@pytest.mark.parametrize("batch_items,words", [
    ([], "at least one item"),
    ([prism_pb2.BatchItem(custom_id="x")], "neither generate nor extract"),
    ([prism_pb2.BatchItem(generate=request("hi", LOCAL_MODEL))], "items[0].custom_id is empty"),
    ([prism_pb2.BatchItem(custom_id="x", generate=prism_pb2.GenerateRequest())], "items[0] (custom_id 'x'): messages"),
    ([prism_pb2.BatchItem(custom_id="x", extract=prism_pb2.ExtractRequest(input=[prism_pb2.Part(text="t")]))], "schema_json"),
])
def test_bad_items_are_invalid_argument_naming_the_item(batch_server, batch_items, words):
    err = rpc_error(lambda: submit(batch_server, batch_items), words)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.details(), (err.code(), err.details())


def test_unknown_and_empty_batch_ids(batch_server):
    for call in ("GetBatch", "CancelBatch"):
        err = rpc_error(lambda: getattr(stub(batch_server), call)(prism_pb2.GetBatchRequest(id="batch_nope"), timeout=RPC_TIMEOUT_S), call)
        assert err.code() == grpc.StatusCode.NOT_FOUND and "batch_nope" in err.details(), err
    err = rpc_error(lambda: results(batch_server, "batch_nope"), "StreamBatchResults")
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    err = rpc_error(lambda: get(batch_server, ""), "empty id")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "id" in err.details(), err


# --- cancel and retention -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_server(servers: ServerPool, fakes, session_dir: Path):
    """One local item at a time, so a batch of many lasts long enough to act on while it runs."""
    server = start(servers, fakes, "batches-slow", session_dir, batches={"concurrency": 1})
    try:
        yield server
    finally:
        server.stop()


def test_cancel_a_vendor_batch(batch_server, fakes):
    """Cancelled right after submit: the items are cancelled locally if not yet sent, else the
    vendor is asked to cancel (the fake needs three polls to finish a batch, far more than this)."""
    prefix = f"cv-{uuid.uuid4().hex[:6]}"
    batch = submit(batch_server, items(prefix, OPENAI_MODEL, 4))
    stub(batch_server).CancelBatch(prism_pb2.GetBatchRequest(id=batch.id), timeout=RPC_TIMEOUT_S)
    got = by_custom_id(results(batch_server, batch.id), [f"{prefix}-{i}" for i in range(4)])
    assert all(r.WhichOneof("result") == "error" and r.error.code == grpc.StatusCode.CANCELLED.value[0] for r in got.values()), got
    done = wait_finished(batch_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_CANCELLED and done.cancelled == 4, done
    created = openai_batches(fakes, batch.id)
    assert len(created) <= 1, created
    if created:  # it had reached the vendor: the vendor was asked to cancel it
        cancels = [e for e in fakes["openai"].entries() if e.get("path", "").endswith("/cancel") and done.vendor_batch_ids[0] in e["path"]]
        assert len(cancels) == 1, cancels


def test_cancel_a_local_batch_cancels_what_has_not_started(slow_server):
    prefix = f"cl-{uuid.uuid4().hex[:6]}"
    batch = submit(slow_server, items(prefix, LOCAL_MODEL, 300))
    cancelled = stub(slow_server).CancelBatch(prism_pb2.GetBatchRequest(id=batch.id), timeout=RPC_TIMEOUT_S)
    assert cancelled.cancelled > 0, cancelled
    got = by_custom_id(results(slow_server, batch.id), [f"{prefix}-{i}" for i in range(300)])
    done = wait_finished(slow_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_CANCELLED, done
    assert done.succeeded + done.cancelled == 300 and done.cancelled >= cancelled.cancelled, done
    kinds = [r.WhichOneof("result") for r in got.values()]
    assert kinds.count("error") == done.cancelled and kinds.count("text") == done.succeeded, done


def test_finished_batches_are_removed_after_the_retention_time(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "batches-retention", session_dir, batches={"retention_seconds": 2})
    try:
        batch = submit(server, items(f"rt-{uuid.uuid4().hex[:6]}", LOCAL_MODEL, 1))
        wait_finished(server, batch.id)
        deadline = time.monotonic() + 30
        while True:
            try:
                get(server, batch.id)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.NOT_FOUND, err
                return
            assert time.monotonic() < deadline, "a finished batch is still there 30 s after a retention of 2 s"
            time.sleep(0.2)
    finally:
        server.stop()


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_submits_a_jsonl_file_waits_and_prints_results_as_jsonl(batch_server, tmp_path):
    cli, prefix = server_binary().parent / "prism", f"cli-{uuid.uuid4().hex[:6]}"
    # The short form (a GenerateRequest beside its custom_id), then a BatchItem in proto3 JSON.
    lines = [{"custom_id": f"{prefix}-{i}", "model": LOCAL_MODEL, "system": "be brief", "max_tokens": 50,
              "messages": [{"role": "ROLE_USER", "parts": [{"text": f"{prefix} question {i}"}]}]} for i in range(3)]
    lines.append({"customId": f"{prefix}-v", "generate": {"route": {"model": OPENAI_MODEL}, "temperature": {"value": 0},
                  "messages": [{"role": 1, "parts": [{"text": f"{prefix} vendor question"}]}]}})
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    server = ["--server", batch_server.target]
    submitted = subprocess.run([str(cli), "batch", "submit", str(jsonl), "--wait", "--label", "cli", *server],
                               capture_output=True, text=True, timeout=FINISH_DEADLINE_S)
    assert submitted.returncode == 0, submitted.stderr
    out = submitted.stdout.splitlines()
    batch_id = out[0]
    assert batch_id.startswith("batch_") and "DONE: 4/4 finished (4 succeeded" in out[-1], submitted.stdout
    assert "[" + "#" * 30 + "] 4/4 done" in submitted.stderr, submitted.stderr  # the progress line
    read = subprocess.run([str(cli), "batch", "results", batch_id, *server], capture_output=True, text=True, timeout=FINISH_DEADLINE_S)
    assert read.returncode == 0, read.stderr
    results_ = [json.loads(line) for line in read.stdout.splitlines()]
    assert sorted(r["customId"] for r in results_) == sorted([f"{prefix}-{i}" for i in range(3)] + [f"{prefix}-v"]), results_
    assert all(r["text"] for r in results_), results_
    vendor = next(r for r in results_ if r["customId"] == f"{prefix}-v")
    assert int(vendor["usage"]["costUsdMicros"]) > 0 and isinstance(vendor["usage"]["inputTokens"], str), vendor
    status = subprocess.run([str(cli), "batch", "status", batch_id, *server], capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and "DONE" in status.stdout and "vendor batches batch_" in status.stdout, status


def test_cli_names_the_line_and_the_field_it_cannot_read(batch_server, tmp_path):
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text(json.dumps({"custom_id": "a", "messages": [{"parts": [{"text": "hi"}]}]}) + "\n"
                     + json.dumps({"custom_id": "b", "messages": [{"role": "ROLE_USER", "parts": [{"colour": "red"}]}]}) + "\n")
    done = subprocess.run([str(server_binary().parent / "prism"), "batch", "submit", str(jsonl), "--server", batch_server.target],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "line 2: generate.messages[0].parts[0]" in done.stderr and "colour" in done.stderr, done.stderr
