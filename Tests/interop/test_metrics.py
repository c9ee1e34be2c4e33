"""The prism_* metrics after real Generate calls through the real OpenAI plugin and the fake OpenAI
server (tools/fakes), scraped from /metrics with prometheus_client's parser as Prometheus reads it:
provider calls by outcome, time to first token, tokens and cost, cache decisions, the allow-listed
request label (kept, its value cut) and the others (dropped), plugin states, calls in flight, the
worker and compute pools and the host I/O loops' transfers; and the admin listener of `metrics.listen`. The gRPC families are checked in
test_http1.py."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerPool
from harness import RPC_TIMEOUT_S
from test_http1 import metrics, sample
from test_vendors import OPENAI_MODEL, fakes, generate, of_kind, ok, request, vendor_env  # noqa: F401 (a fixture)

# The allow-listed request label; "user" is sent too and must never show.
ALLOWED = "team"
# ProviderMetrics.maxLabelValueLength.
MAX_LABEL_VALUE = 64
# The worker pool the server is given, so its gauges can be checked against the config.
WORKER_THREADS, QUEUED_CALLS = 3, 5
# How long a gauge or a counter recorded after the RPC ends may take to show.
SETTLE_DEADLINE_S = 10.0
PROVIDER, MODEL = OPENAI_MODEL.split("/")[0], OPENAI_MODEL
ADMIN_LINE = re.compile(r"^prism-server admin pages on (?P<host>[0-9.]+):(?P<port>\d+) \(http\)$")


@pytest.fixture(scope="module")
def metrics_server(servers: ServerPool, fakes, session_dir: Path):
    config = session_dir / "metrics.json"
    config.write_text(json.dumps({
        "metrics": {"label_allow_list": [ALLOWED], "listen": "127.0.0.1:0"},
        "plugins": {"worker_threads": WORKER_THREADS, "queued_calls": QUEUED_CALLS},
    }))
    server = servers.start("metrics-h2c", ["--config", str(config)], "h2c", env=vendor_env(fakes))
    try:
        yield server
    finally:
        server.stop()


def ask(text: str, team: str, *, temperature: float | None = None, policy=prism_pb2.CACHE_DEFAULT):
    req = request(f"{text} {uuid.uuid4().hex[:8]}" if temperature is None else text, OPENAI_MODEL)
    req.labels[ALLOWED] = team
    req.labels["user"] = "alice"
    if temperature is not None:
        req.temperature.value = temperature
    req.route.cache = policy
    return req


def value(families, family: str, name: str, **labels) -> float:
    """The one sample of `name` whose labels are exactly `labels` plus an empty allow-listed label
    where not given; 0 when there is none (a counter not yet incremented)."""
    labels.setdefault(ALLOWED, "")
    labels.setdefault("key", "")  # the caller's API key name: none here (auth off)
    matches = [s.value for s in (families[family].samples if family in families else []) if s.name == name and s.labels == labels]
    assert len(matches) <= 1, (name, labels, matches)
    return matches[0] if matches else 0.0


def poll(server, check, what: str):
    """Scrapes until `check(families)` is true, failing with the last scrape after the deadline."""
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    while True:
        families = metrics(server)
        if check(families):
            return families
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {SETTLE_DEADLINE_S}s; prism_* samples: "
                                 f"{[(s.name, s.labels, s.value) for f in families.values() if f.name.startswith('prism_') for s in f.samples]}")
        time.sleep(0.05)


def test_provider_calls_first_token_usage_and_labels(metrics_server):
    usages = []
    for i in range(2):
        events, err = generate(metrics_server, ask(f"metrics call {i}", "search"))
        ok(events, err, "Generate")
        usages += of_kind(events, "usage")
    families = metrics(metrics_server)
    labels = dict(provider=PROVIDER, model=MODEL, team="search")

    assert value(families, "prism_provider_calls", "prism_provider_calls_total", outcome="ok", **labels) == 2
    assert families["prism_time_to_first_token_seconds"].type == "histogram"
    assert value(families, "prism_time_to_first_token_seconds", "prism_time_to_first_token_seconds_count", **labels) == 2
    assert value(families, "prism_time_to_first_token_seconds", "prism_time_to_first_token_seconds_bucket", le="+Inf", **labels) == 2
    assert value(families, "prism_time_to_first_token_seconds", "prism_time_to_first_token_seconds_sum", **labels) > 0
    # Tokens and cost are what the usage events told the client, summed.
    assert len(usages) == 2 and all(u.input_tokens > 0 and u.output_tokens > 0 for u in usages), usages
    assert value(families, "prism_tokens", "prism_tokens_total", direction="input", **labels) == sum(u.input_tokens for u in usages)
    assert value(families, "prism_tokens", "prism_tokens_total", direction="output", **labels) == sum(u.output_tokens for u in usages)
    cost = value(families, "prism_cost_usd", "prism_cost_usd_total", **labels)
    assert cost == pytest.approx(sum(u.cost_usd_micros for u in usages) / 1e6) and cost > 0
    # Temperature unset: looked up (a miss) but not kept.
    assert value(families, "prism_cache_requests", "prism_cache_requests_total", result="miss", team="search") == 2

    # The label not allow-listed is on no sample; the allow-listed one is on every prism_* family of a call.
    for family in families.values():
        for s in family.samples:
            assert "user" not in s.labels, (s.name, s.labels)
    for family in ("prism_provider_calls", "prism_time_to_first_token_seconds", "prism_tokens", "prism_cost_usd", "prism_cache_requests"):
        assert any(s.labels.get(ALLOWED) == "search" for s in families[family].samples), family


def test_cache_hit_bypass_and_refresh_are_counted(metrics_server):
    text = f"metrics cached {uuid.uuid4().hex[:8]}"
    for policy in (prism_pb2.CACHE_DEFAULT, prism_pb2.CACHE_DEFAULT, prism_pb2.CACHE_BYPASS, prism_pb2.CACHE_REFRESH):
        events, err = generate(metrics_server, ask(text, "cache", temperature=0.0, policy=policy))
        ok(events, err, "Generate")
    hit = of_kind(events, "routed")  # the last one, refreshed: a fresh answer
    assert not hit[0].cache_hit
    families = metrics(metrics_server)
    counts = {r: value(families, "prism_cache_requests", "prism_cache_requests_total", result=r, team="cache")
              for r in ("hit", "miss", "bypass", "refresh")}
    assert counts == {"hit": 1, "miss": 1, "bypass": 1, "refresh": 1}, counts
    # The hit made no provider call: three calls for four requests.
    assert value(families, "prism_provider_calls", "prism_provider_calls_total", provider=PROVIDER, model=MODEL,
                 outcome="ok", team="cache") == 3


def test_failed_calls_are_counted_by_outcome_and_long_label_values_are_cut(metrics_server):
    team = "x" * (MAX_LABEL_VALUE + 36)
    # 429 first, then the retry answers: one Generate, two provider calls.
    events, err = generate(metrics_server, ask("metrics once-429", team))
    ok(events, err, "Generate after a 429")
    events, err = generate(metrics_server, ask("metrics status-400", team))
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err, events)
    families = metrics(metrics_server)
    cut = dict(provider=PROVIDER, model=MODEL, team="x" * MAX_LABEL_VALUE)
    outcomes = {o: value(families, "prism_provider_calls", "prism_provider_calls_total", outcome=o, **cut)
                for o in ("ok", "rate_limited", "invalid_argument")}
    assert outcomes == {"ok": 1, "rate_limited": 1, "invalid_argument": 1}, outcomes
    assert not any(s.labels.get(ALLOWED) == team for f in families.values() for s in f.samples), "the long value was not cut"
    # No first token for the failed calls.
    assert value(families, "prism_time_to_first_token_seconds", "prism_time_to_first_token_seconds_count", **cut) == 1


def test_plugin_states_and_worker_pool(metrics_server):
    families = metrics(metrics_server)
    openai = {s.labels["state"]: s.value for s in families["prism_plugin_state"].samples
              if s.labels["plugin"] == "libprism-plugin-openai.so"}
    assert openai == {"loaded": 1, "draining": 0, "failed": 0, "unloaded": 0}, openai
    assert sample(families, "prism_worker_pool_capacity", "prism_worker_pool_capacity") == WORKER_THREADS
    assert sample(families, "prism_worker_pool_queue_capacity", "prism_worker_pool_queue_capacity") == QUEUED_CALLS
    # The compute pool and the host I/O loops are both one per core.
    cores = sample(families, "prism_compute_pool_capacity", "prism_compute_pool_capacity")
    assert cores >= 1
    assert len(io_loop_transfers(families)) == cores, io_loop_transfers(families)
    assert sample(families, "prism_compute_pool_busy", "prism_compute_pool_busy") == 0


def test_calls_in_flight_show_while_a_call_runs_and_a_cancelled_call_is_counted(metrics_server):
    def running(families):
        return (sample(families, "prism_rpcs_in_flight", "prism_rpcs_in_flight") >= 1
                and sample(families, "prism_plugin_calls_in_flight", "prism_plugin_calls_in_flight", plugin="libprism-plugin-openai.so") >= 1
                and sum(io_loop_transfers(families).values()) >= 1)

    def idle(families):
        return (sample(families, "prism_rpcs_in_flight", "prism_rpcs_in_flight") == 0
                and sample(families, "prism_plugin_calls_in_flight", "prism_plugin_calls_in_flight", plugin="libprism-plugin-openai.so") == 0
                and sample(families, "prism_worker_pool_busy", "prism_worker_pool_busy") == 0
                and sum(io_loop_transfers(families).values()) == 0)

    poll(metrics_server, idle, "nothing in flight before the call")
    with metrics_server.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Generate(ask("metrics stall", "stall"), timeout=RPC_TIMEOUT_S)
        reader = threading.Thread(target=lambda: list(_events_until_error(call)), daemon=True)
        reader.start()
        families = poll(metrics_server, running, "the stalled call in flight")
        # The openai plugin is non-blocking (ABI 2.0): its stream waits on an I/O loop, not a worker.
        assert sample(families, "prism_worker_pool_busy", "prism_worker_pool_busy") == 0
        call.cancel()
        reader.join(RPC_TIMEOUT_S)
    poll(metrics_server, idle, "nothing in flight after the cancel")
    poll(metrics_server, lambda f: value(f, "prism_provider_calls", "prism_provider_calls_total", provider=PROVIDER, model=MODEL,
                                          outcome="cancelled", team="stall") == 1, "the cancelled call counted")


def io_loop_transfers(families) -> dict[str, float]:
    """prism_io_loop_transfers by loop index."""
    family = families.get("prism_io_loop_transfers")
    return {s.labels["loop"]: s.value for s in (family.samples if family else []) if s.name == "prism_io_loop_transfers"}


def _events_until_error(call):
    try:
        yield from call
    except grpc.RpcError:
        return


def test_admin_listener_serves_the_operator_pages_alone(metrics_server):
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    while not any(ADMIN_LINE.match(line) for line in metrics_server.stdout_lines):
        assert time.monotonic() < deadline, f"no admin line on stdout: {metrics_server.stdout_lines}"
        time.sleep(0.05)
    match = next(ADMIN_LINE.match(line) for line in metrics_server.stdout_lines if ADMIN_LINE.match(line))
    conn = http.client.HTTPConnection(match["host"], int(match["port"]), timeout=RPC_TIMEOUT_S)
    try:
        pages = {}
        for path in ("/healthz", "/readyz", "/metrics", "/prism.v1.Prism/ListProviders", "/"):
            conn.request("GET", path)
            response = conn.getresponse()
            pages[path] = (response.status, response.read())
    finally:
        conn.close()
    assert pages["/healthz"] == (200, b"ok\n") and pages["/readyz"] == (200, b"ready\n"), pages
    assert pages["/prism.v1.Prism/ListProviders"][0] == 404 and pages["/"][0] == 404, "the admin port serves the operator pages alone"
    status, body = pages["/metrics"]
    families = {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}
    assert status == 200 and {"grpc_server_started", "prism_provider_calls", "prism_plugin_state"} <= set(families), sorted(families)
