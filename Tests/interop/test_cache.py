"""The response cache from the Python grpcio client, against the real prism-server, the real OpenAI
plugin and the fake OpenAI server (the fakes of test_vendors.py): a miss then a hit (one vendor
request), BYPASS and REFRESH, the default rule (temperature 0 cached, 0.7 not), a hit after a
restart and after kill -9 on the same PRISM_DATA_DIR, single flight for 20 identical requests, a
cut stream never cached, one photo in two encodings sharing an entry, and TTL expiry. Then
Anthropic's own prompt cache: the marks the plugin sets and the cache tokens in Usage."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool
from harness import RPC_TIMEOUT_S, ServerStartError
from test_generate import pdf
from test_vendors import ANTHROPIC_MODEL, OPENAI_MODEL, fakes, generate, kinds, of_kind, ok, png, request, text_of, vendor_env  # noqa: F401

# The TTL of the expiry test's server: short, so the test waits little.
SHORT_TTL_SECONDS = 1
# How long the expiry test polls for the entry to go, well past the TTL.
EXPIRY_DEADLINE_S = 15.0


def start(servers: ServerPool, fakes, name: str, session_dir: Path, cache: dict | None = None):
    """A prism-server whose OpenAI plugin talks to the fake; `cache` goes to the config file."""
    args = []
    if cache is not None:
        config = session_dir / f"{name}.json"
        config.write_text(json.dumps({"cache": cache}))
        args = ["--config", str(config)]
    return servers.start(name, args, "h2c", env=vendor_env(fakes))


@pytest.fixture(scope="module")
def cache_server(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "cache-h2c", session_dir)
    try:
        yield server
    finally:
        server.stop()


def ask(text: str, *, temperature: float | None = 0.0, policy=prism_pb2.CACHE_DEFAULT, media=(), tools=()):
    req = request(text, OPENAI_MODEL, media=list(media), tools=list(tools))
    if temperature is not None:
        req.temperature.value = temperature
    req.route.cache = policy
    return req


def unique(words: str) -> str:
    return f"{words} {uuid.uuid4().hex[:8]}"


def answer(server, req):
    """(text, routed, usage) of one OK Generate, checking it ended with `finished`."""
    events, err = generate(server, req)
    ok(events, err, "Generate")
    assert kinds(events)[0] == "routed" and kinds(events)[-1] == "finished", kinds(events)
    return text_of(events), of_kind(events, "routed")[0], of_kind(events, "usage")[-1]


def test_miss_then_hit_replays_the_answer_without_the_vendor(cache_server, fakes):
    text = unique("cache miss then hit")
    first_text, first_route, first_usage = answer(cache_server, ask(text))
    assert not first_route.cache_hit
    assert first_usage.cost_usd_micros > 0, first_usage
    second_text, second_route, second_usage = answer(cache_server, ask(text))
    assert second_route.cache_hit, second_route
    assert (second_route.provider, second_route.model) == (first_route.provider, first_route.model)
    assert second_text == first_text
    assert second_usage.cost_usd_micros == 0, second_usage
    assert (second_usage.input_tokens, second_usage.output_tokens) == (first_usage.input_tokens, first_usage.output_tokens)
    assert len(fakes["openai"].requests(text)) == 1


def test_bypass_neither_reads_nor_writes(cache_server, fakes):
    text = unique("cache bypass")
    _, route, _ = answer(cache_server, ask(text, policy=prism_pb2.CACHE_BYPASS))
    assert not route.cache_hit
    _, route, _ = answer(cache_server, ask(text))  # nothing was stored: a miss
    assert not route.cache_hit
    _, route, _ = answer(cache_server, ask(text, policy=prism_pb2.CACHE_BYPASS))  # stored now, but not read
    assert not route.cache_hit
    assert len(fakes["openai"].requests(text)) == 3


def test_refresh_calls_the_vendor_and_replaces_the_entry(cache_server, fakes):
    text = unique("cache refresh numbered")
    first, _, _ = answer(cache_server, ask(text))
    assert first.endswith("(answer 1)"), first
    refreshed, route, _ = answer(cache_server, ask(text, policy=prism_pb2.CACHE_REFRESH))
    assert not route.cache_hit and refreshed.endswith("(answer 2)"), refreshed
    hit, route, _ = answer(cache_server, ask(text))
    assert route.cache_hit and hit == refreshed, hit
    assert len(fakes["openai"].requests(text)) == 2


def test_default_rule_leaves_sampled_and_tool_requests_out(cache_server, fakes):
    for temperature in (0.7, None):
        text = unique(f"cache sampled {temperature}")
        for _ in range(2):
            _, route, _ = answer(cache_server, ask(text, temperature=temperature))
            assert not route.cache_hit
        assert len(fakes["openai"].requests(text)) == 2, temperature
    # Tools: not kept by default, but a client that asks with REFRESH gets later hits.
    tool = prism_pb2.Tool(name="get_weather", description="weather", input_schema_json='{"type":"object"}')
    text = unique("cache tools")
    for policy, hit in ((prism_pb2.CACHE_DEFAULT, False), (prism_pb2.CACHE_DEFAULT, False),
                        (prism_pb2.CACHE_REFRESH, False), (prism_pb2.CACHE_DEFAULT, True)):
        _, route, _ = answer(cache_server, ask(text, tools=[tool], policy=policy))
        assert route.cache_hit == hit, (policy, hit)
    assert len(fakes["openai"].requests(text)) == 3


def test_tool_calls_are_replayed(cache_server, fakes):
    tool = prism_pb2.Tool(name="get_weather", description="weather", input_schema_json='{"type":"object"}')
    text = unique("cache tool")
    first, _ = generate(cache_server, ask(text, tools=[tool], policy=prism_pb2.CACHE_REFRESH))
    second, err = generate(cache_server, ask(text, tools=[tool]))
    ok(second, err, "the hit")
    assert of_kind(second, "routed")[0].cache_hit
    assert of_kind(second, "tool_call") == of_kind(first, "tool_call") and of_kind(first, "tool_call")
    assert of_kind(second, "finished")[0].stop_reason == of_kind(first, "finished")[0].stop_reason
    assert len(fakes["openai"].requests(text)) == 1


def test_a_cut_stream_is_not_cached(cache_server, fakes):
    text = unique("cache cut")
    for _ in range(2):
        events, err = generate(cache_server, ask(text))
        assert err is not None, f"a cut stream ended OK: {kinds(events)}"
        assert not of_kind(events, "routed")[0].cache_hit
    assert len(fakes["openai"].requests(text)) == 2


def test_one_photo_in_two_encodings_shares_an_entry(cache_server, fakes):
    # 3000 px wide: over gpt-4o's 2048 px, so both are decoded and fitted to the same bytes.
    text = unique("cache photo")
    fast = prism_pb2.Media(mime_type="image/png", data=png(3000, 600, level=1), name="a.png")
    small = prism_pb2.Media(mime_type="image/png", data=png(3000, 600, level=9), name="b.png")
    assert fast.data != small.data
    first, route, _ = answer(cache_server, ask(text, media=[fast]))
    assert not route.cache_hit
    second, route, _ = answer(cache_server, ask(text, media=[small]))
    assert route.cache_hit and second == first, route
    assert len(fakes["openai"].requests(text)) == 1


def test_single_flight_makes_one_vendor_call_for_twenty(cache_server, fakes):
    text = unique("cache slow")  # the fake streams for seconds, so all 20 overlap
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: generate(cache_server, ask(text)), range(20)))
    texts = set()
    for events, err in results:
        ok(events, err, "one of 20 identical requests")
        texts.add(text_of(events))
    assert len(texts) == 1
    assert sum(not of_kind(events, "routed")[0].cache_hit for events, _ in results) == 1
    assert len(fakes["openai"].requests(text)) == 1


def test_a_hit_survives_a_restart_and_kill_9(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "cache-restart", session_dir)
    texts = [unique(f"cache durable {i}") for i in range(12)]
    try:
        answer(server, ask(texts[0]))
        server.stop()
        server = start(servers, fakes, "cache-restart", session_dir)
        _, route, _ = answer(server, ask(texts[0]))
        assert route.cache_hit, "no hit after a graceful restart on the same PRISM_DATA_DIR"

        # kill -9 while requests run: every one that was answered OK before it is a hit after.
        answered: list[str] = []
        lock = threading.Lock()

        def one(t: str) -> None:
            events, err = generate(server, ask(t))
            if err is None:
                with lock:
                    answered.append(t)

        threads = [threading.Thread(target=one, args=(t,)) for t in texts[1:]]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + RPC_TIMEOUT_S
        while len(answered) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        with lock:
            before_kill = list(answered)
        for thread in threads:
            thread.join()
        assert before_kill, "no request was answered before the kill"
        server = start(servers, fakes, "cache-restart", session_dir)
        for t in before_kill:
            _, route, _ = answer(server, ask(t))
            assert route.cache_hit, f"{t!r} was answered OK before kill -9 but is not in the cache after"
            assert len(fakes["openai"].requests(t)) == 1
    finally:
        server.stop()


def test_entries_expire_after_the_ttl(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "cache-ttl", session_dir, cache={"ttl_seconds": SHORT_TTL_SECONDS})
    try:
        text = unique("cache ttl")
        answer(server, ask(text))
        deadline = time.monotonic() + EXPIRY_DEADLINE_S
        while len(fakes["openai"].requests(text)) == 1:
            assert time.monotonic() < deadline, f"the entry was still served {EXPIRY_DEADLINE_S}s after a {SHORT_TTL_SECONDS}s TTL"
            answer(server, ask(text))
            time.sleep(0.1)  # the poll's pace
        _, route, _ = answer(server, ask(text))
        assert route.cache_hit, "the fresh answer after expiry was not stored"
    finally:
        server.stop()


def test_a_disabled_cache_is_never_used(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "cache-off", session_dir, cache={"enabled": False})
    try:
        text = unique("cache off")
        for _ in range(2):
            _, route, _ = answer(server, ask(text))
            assert not route.cache_hit
        assert len(fakes["openai"].requests(text)) == 2
    finally:
        server.stop()


# --- Anthropic's prompt cache (the vendor's, behind the gateway's) --------------------------------

LONG_SYSTEM = "You are a careful analyst of reports. " * 150  # about 5,700 characters: over 1,024 tokens


def marks(body) -> list[str]:
    """The blocks of a logged Anthropic body that carry cache_control, by kind."""
    found = ["system"] if isinstance(body.get("system"), list) and body["system"][0].get("cache_control") else []
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block.get("cache_control"):
                found.append(block["type"] + (":" + block["title"] if block.get("title") else ""))
    return found


def test_anthropic_prompt_cache_marks_and_usage(cache_server, fakes):
    text = unique("cache anthropic prompt")
    req = request(text, ANTHROPIC_MODEL, media=[prism_pb2.Media(mime_type="application/pdf", data=pdf(3), name="r.pdf")])
    req.system = LONG_SYSTEM
    req.route.cache = prism_pb2.CACHE_BYPASS  # the gateway's own cache would answer the repeat
    usages = []
    for _ in range(2):
        events, err = generate(cache_server, req)
        ok(events, err, "anthropic with a long system prompt and a PDF")
        usages.append(of_kind(events, "usage")[-1])
    bodies = [r["body"] for r in fakes["anthropic"].requests(text)]
    assert len(bodies) == 2 and marks(bodies[0]) == ["system", "document:r.pdf"], marks(bodies[0])
    written, read = usages
    assert written.cache_write_tokens > 0 and written.cache_read_tokens == 0, written
    assert read.cache_read_tokens == written.cache_write_tokens and read.cache_write_tokens == 0, read
    assert read.cost_usd_micros < written.cost_usd_micros, (read, written)


def test_anthropic_prompt_cache_keeps_at_most_four_marks(cache_server, fakes):
    text = unique("cache anthropic marks")
    documents = [prism_pb2.Media(mime_type="application/pdf", data=pdf(1 + i), name=f"d{i}.pdf") for i in range(5)]
    req = request(text, ANTHROPIC_MODEL, media=documents)
    req.system = LONG_SYSTEM
    events, err = generate(cache_server, req)
    ok(events, err, "five PDFs and a long system prompt")  # the fake refuses a fifth mark, as the API does
    body = fakes["anthropic"].requests(text)[0]["body"]
    assert marks(body) == ["system", "document:d2.pdf", "document:d3.pdf", "document:d4.pdf"], marks(body)


def test_a_short_prompt_is_not_marked(cache_server, fakes):
    text = unique("cache anthropic short")
    req = request(text, ANTHROPIC_MODEL)
    req.system = "Be brief."
    events, err = generate(cache_server, req)
    ok(events, err, "a short prompt")
    body = fakes["anthropic"].requests(text)[0]["body"]
    assert body["system"] == "Be brief." and marks(body) == [], body
    usage = of_kind(events, "usage")[-1]
    assert usage.cache_read_tokens == 0 and usage.cache_write_tokens == 0, usage


def test_an_unusable_data_folder_stops_the_start(servers: ServerPool, session_dir: Path):
    blocker = session_dir / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(ServerStartError) as failure:
        servers.start("cache-bad-data-dir", [], "h2c", env={"PRISM_DATA_DIR": str(blocker / "prism")})
    assert "cannot create the data folder" in str(failure.value), str(failure.value)
