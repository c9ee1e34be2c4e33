"""Named API keys, quotas, usage accounting and Redis, from the Python grpcio client against the real
prism-server, the real OpenAI and Anthropic plugins and the vendor fakes: a key over its requests
per minute (RESOURCE_EXHAUSTED with retry-after-ms), a token budget spent by real usage, a model
outside a key's allow-list (PERMISSION_DENIED, aliases resolved first), usage rows read with
`prism usage --json`, a cache hit through Redis across two server processes, and Redis stopped
mid-run: clear statuses, /readyz, and recovery once it is back."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import server_binary
from harness import REPO_ROOT, RPC_TIMEOUT_S, assert_status
from http1 import connect, web_call
from test_vendors import ANTHROPIC_MODEL, OPENAI_MODEL, fakes, kinds, of_kind, request, vendor_env  # noqa: F401
from test_vendors import generate as generate_with

StatusCode = grpc.StatusCode

# The keys of these tests: (name, key, limits). "tokens" has a budget one answer of the fake spends.
KEYS = {
    "rpm": dict(key="key-rpm", requests_per_minute=3),
    "tokens": dict(key="key-tokens", tokens_per_minute=5),
    "claude-only": dict(key="key-claude", models=["anthropic/claude-*"]),
    "free": dict(key="key-free"),
    "limited": dict(key="key-limited", requests_per_minute=100_000),
    "connect-rpm": dict(key="key-connect", requests_per_minute=1),
}
# How long a test waits for a condition that follows an outage or a recovery (the pool pings
# Redis every second and backs off at most 5 s between reconnection attempts).
RECOVERY_DEADLINE_S = 30.0
# The requests-per-minute test starts no later than this many seconds into a minute, so its
# burst of calls falls in one window.
LATEST_START_IN_MINUTE_S = 45.0


def bearer(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {KEYS[name]['key']}")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A throwaway redis-server from tools/services.sh (missing: skipped, or failed under CI)."""

    def __init__(self, folder: Path):
        if shutil.which("redis-server") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is not installed (tools/setup.sh installs it)")
            pytest.skip("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"

    def run(self, action: str) -> None:
        subprocess.run(["bash", str(REPO_ROOT / "tools/services.sh"), "redis", action, str(self.folder), str(self.port)],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> "Redis":
        self.run("start")
        return self

    def stop(self) -> None:
        self.run("stop")


@pytest.fixture(scope="module")
def redis(session_dir: Path):
    server = Redis(session_dir / f"redis-{uuid.uuid4().hex[:8]}").start()
    try:
        yield server
    finally:
        server.stop()


def config(session_dir: Path, name: str, redis_url: str | None) -> list[str]:
    body = {
        "auth": {"mode": "on", "keys": [dict(name=n, **k) for n, k in KEYS.items()]},
        "models": {"aliases": {"fast": OPENAI_MODEL}},
    }
    if redis_url:
        body["store"] = {"redis_url": redis_url}
    path = session_dir / f"{name}.json"
    path.write_text(json.dumps(body))
    return ["--config", str(path)]


def start(servers, fakes, session_dir: Path, name: str, redis_url: str | None):
    return servers.start(name, config(session_dir, name, redis_url), "h2c", env=vendor_env(fakes))


@pytest.fixture(scope="module")
def keyed_server(servers, fakes, session_dir: Path, redis):
    server = start(servers, fakes, session_dir, "quotas-a", redis.url)
    try:
        yield server
    finally:
        server.stop()


def generate(server, req, key: str):
    """All events of one Generate with `key`, and the grpc.RpcError it ended with (None for OK)."""
    return generate_with(server, req, bearer(key))


def ok(events, err, what: str):
    assert err is None, f"{what}: {err.code().name} {err.details()}"
    assert kinds(events)[-1] == "finished", kinds(events)


def trailer(err, name: str) -> str | None:
    return dict(err.trailing_metadata() or ()).get(name)


def unique(words: str) -> str:
    return f"{words} {uuid.uuid4().hex[:8]}"


def usage_rows(server, *args: str) -> list[dict]:
    prism = server_binary().parent / "prism"
    env = dict(os.environ, PRISM_DATA_DIR=str(server.workdir / f"{server.name}-data"))
    done = subprocess.run([str(prism), "usage", "--json", *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def readyz(server) -> tuple[int, str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=RPC_TIMEOUT_S)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def poll(condition, what: str, deadline_s: float = RECOVERY_DEADLINE_S):
    """Calls `condition` until it returns a truthy value (returned) or the deadline passes (failing with `what`)."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"{what} within {deadline_s} s (last: {last!r})")


def early_in_a_minute():
    """Waits until the wall clock is early in a minute, so the calls that follow share one window."""
    poll(lambda: time.time() % 60 < LATEST_START_IN_MINUTE_S, "the start of a minute", 61)


def test_requests_per_minute_are_refused_with_retry_after(keyed_server):
    early_in_a_minute()
    with keyed_server.channel() as channel:
        stub = prism_pb2_grpc.PrismStub(channel)
        for i in range(3):
            stub.ListProviders(prism_pb2.ListProvidersRequest(), metadata=bearer("rpm"), timeout=RPC_TIMEOUT_S)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListProviders(prism_pb2.ListProvidersRequest(), metadata=bearer("rpm"), timeout=RPC_TIMEOUT_S)
        # Another key is not held back by this one's limit.
        stub.ListProviders(prism_pb2.ListProvidersRequest(), metadata=bearer("free"), timeout=RPC_TIMEOUT_S)
    err = info.value
    assert_status(err, StatusCode.RESOURCE_EXHAUSTED, "the 4th call of a key allowed 3 a minute")
    assert "'rpm'" in err.details() and "requests_per_minute" in err.details(), err.details()
    retry = trailer(err, "retry-after-ms")
    assert retry is not None and 0 < int(retry) <= 60_000, err.trailing_metadata()


def test_a_token_budget_is_spent_by_real_usage(keyed_server):
    early_in_a_minute()
    events, err = generate(keyed_server, request(unique("spend my tokens"), OPENAI_MODEL), "tokens")
    ok(events, err, "the first call of the token budget")
    spent = of_kind(events, "usage")[-1]
    assert spent.input_tokens + spent.output_tokens >= KEYS["tokens"]["tokens_per_minute"], spent
    _, err = generate(keyed_server, request(unique("one more"), OPENAI_MODEL), "tokens")
    assert err is not None, "a key over its tokens_per_minute was admitted"
    assert_status(err, StatusCode.RESOURCE_EXHAUSTED, "a call after the budget was spent")
    assert "tokens_per_minute" in err.details(), err.details()
    assert 0 < int(trailer(err, "retry-after-ms")) <= 60_000, err.trailing_metadata()


def test_a_model_outside_the_allow_list_is_denied(keyed_server, fakes):
    text = unique("not for you")
    for model in (OPENAI_MODEL, "fast"):  # "fast" is an alias of the OpenAI model
        events, err = generate(keyed_server, request(text, model), "claude-only")
        assert err is not None, f"{model}: served to a key allowed only anthropic/claude-*"
        assert_status(err, StatusCode.PERMISSION_DENIED, model)
        assert OPENAI_MODEL in err.details() and "claude-only" in err.details(), err.details()
        assert not events
    assert not fakes["openai"].requests(text), "the vendor was called for a denied model"
    events, err = generate(keyed_server, request(unique("for you"), ANTHROPIC_MODEL), "claude-only")
    ok(events, err, "an allowed model")


def test_the_key_reaches_the_service_over_grpc_web_and_connect(keyed_server):
    # gRPC-Web: the allow-list of the key presented in the header applies.
    conn = connect(keyed_server)
    try:
        denied = web_call(conn, "/prism.v1.Prism/Generate", request(unique("web"), OPENAI_MODEL).SerializeToString(),
                          headers={"authorization": f"Bearer {KEYS['claude-only']['key']}"})
    finally:
        conn.close()
    assert denied.grpc_status == StatusCode.PERMISSION_DENIED.value[0], (denied.grpc_status, denied.grpc_message)
    assert "claude-only" in denied.grpc_message, denied.grpc_message
    # Connect unary: a key allowed one call a minute; the second gets 429 and the retry time.
    early_in_a_minute()
    answers = []
    for _ in range(2):
        conn = connect(keyed_server)
        try:
            conn.request("POST", "/prism.v1.Prism/ListProviders", body=b"", headers={
                "content-type": "application/proto", "connect-protocol-version": "1",
                "authorization": f"Bearer {KEYS['connect-rpm']['key']}"})
            response = conn.getresponse()
            answers.append((response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()))
        finally:
            conn.close()
    assert answers[0][0] == 200, answers[0]
    status, headers, body = answers[1]
    assert status == 429, (status, body)
    error = json.loads(body)
    assert error["code"] == "resource_exhausted" and "'connect-rpm'" in error["message"], error
    assert 0 < int(headers["trailer-retry-after-ms"]) <= 60_000, headers


def test_a_batch_item_outside_the_allow_list_is_denied(keyed_server):
    items = [prism_pb2.BatchItem(custom_id="allowed", generate=request(unique("batch ok"), ANTHROPIC_MODEL)),
             prism_pb2.BatchItem(custom_id="denied", generate=request(unique("batch no"), OPENAI_MODEL))]
    with keyed_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as info:
            prism_pb2_grpc.PrismStub(channel).SubmitBatch(prism_pb2.SubmitBatchRequest(items=items), metadata=bearer("claude-only"),
                                                          timeout=RPC_TIMEOUT_S)
    assert_status(info.value, StatusCode.PERMISSION_DENIED, "a batch with an item for a model the key may not use")
    assert "'denied'" in info.value.details() and OPENAI_MODEL in info.value.details(), info.value.details()


def test_usage_rows_follow_the_calls(keyed_server):
    before = {(r["model"], r["day"]): r for r in usage_rows(keyed_server, "--key", "free")}
    spent = []
    for i in range(2):
        events, err = generate(keyed_server, request(unique(f"count me {i}"), OPENAI_MODEL), "free")
        ok(events, err, "a call to count")
        spent.append(of_kind(events, "usage")[-1])
    rows = usage_rows(keyed_server, "--key", "free", "--since", time.strftime("%Y-%m-%d", time.gmtime()))
    assert all(r["key"] == "free" for r in rows), rows
    row = next(r for r in rows if r["model"] == OPENAI_MODEL)
    old = before.get((OPENAI_MODEL, row["day"]), dict(requests=0, input_tokens=0, output_tokens=0, cost_micros=0))
    assert row["requests"] - old["requests"] == 2, (row, old)
    assert row["input_tokens"] - old["input_tokens"] == sum(u.input_tokens for u in spent), (row, spent)
    assert row["output_tokens"] - old["output_tokens"] == sum(u.output_tokens for u in spent), (row, spent)
    assert row["cost_micros"] - old["cost_micros"] == sum(u.cost_usd_micros for u in spent) > 0, (row, spent)
    assert usage_rows(keyed_server, "--key", "nobody") == []


def test_a_cached_answer_is_a_hit_on_another_server(servers, fakes, session_dir: Path, redis, keyed_server):
    other = start(servers, fakes, session_dir, "quotas-b", redis.url)
    try:
        text = unique("shared cache")
        req = request(text, OPENAI_MODEL)
        req.temperature.value = 0
        events, err = generate(keyed_server, req, "free")
        ok(events, err, "the miss on server A")
        assert not of_kind(events, "routed")[0].cache_hit
        events, err = generate(other, req, "free")
        ok(events, err, "the same request on server B")
        assert of_kind(events, "routed")[0].cache_hit, "server B did not find server A's answer in Redis"
        assert len(fakes["openai"].requests(text)) == 1
    finally:
        other.stop()


def test_redis_stopped_mid_run(servers, fakes, session_dir: Path):
    redis = Redis(session_dir / f"redis-outage-{uuid.uuid4().hex[:8]}").start()
    server = start(servers, fakes, session_dir, "quotas-outage", redis.url)
    try:
        assert readyz(server) == (200, "ready\n")
        redis.stop()
        status, body = poll(lambda: (lambda r: r if r[0] == 503 else None)(readyz(server)), "/readyz reporting the outage")
        assert "Redis" in body and redis.url.removeprefix("redis://") in body, body

        # A key with quotas cannot be counted: UNAVAILABLE naming Redis.
        events, err = generate(server, request(unique("needs redis"), OPENAI_MODEL), "limited")
        assert err is not None, "a key with quotas was served with Redis down"
        assert_status(err, StatusCode.UNAVAILABLE, "a quota check with Redis down")
        assert "Redis" in err.details(), err.details()
        # A key without quotas does not need Redis: the cache is bypassed, the answer comes.
        req = request(unique("cache bypassed"), OPENAI_MODEL)
        req.temperature.value = 0
        events, err = generate(server, req, "free")
        ok(events, err, "a call of a key without quotas, Redis down")

        redis.start()
        poll(lambda: readyz(server) == (200, "ready\n"), "/readyz ready again after Redis returned")
        events, err = generate(server, request(unique("redis is back"), OPENAI_MODEL), "limited")
        ok(events, err, "a key with quotas after Redis returned")
    finally:
        server.stop()
        redis.stop()
