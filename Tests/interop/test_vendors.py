"""The real vendor plugins (libprism-plugin-openai.so, -anthropic.so, -gemini.so, which `swift build`
puts beside prism-server) inside a running prism-server, against the fake vendor servers of
tools/fakes/, from the Python grpcio client. One transport (h2c) keeps it quick: the transports are
covered elsewhere; this module is about what a user sees from the vendors.

The fakes pick a scenario from a word in the last user text (`tool`, `cut`, `status-NNN`,
`overloaded`, ...) and log every request as a JSON line; each test uses its own prompt and reads
back only the log entries carrying that prompt, so the fakes can be shared by the whole module."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool, server_binary
from harness import REPO_ROOT, RPC_TIMEOUT_S, PrismServer

FAKES_DIR = REPO_ROOT / "tools" / "fakes"
PLUGINS = ("libprism-plugin-openai.so", "libprism-plugin-anthropic.so", "libprism-plugin-gemini.so")

OPENAI_KEY = "sk-interop"
ANTHROPIC_KEY = "ak-interop"
GEMINI_KEY = "gk-interop"

OPENAI_MODEL = "openai/gpt-4o"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"
GEMINI_MODEL = "gemini/gemini-2.5-flash"

FAKE_START_TIMEOUT_S = 15.0


# --- the fake vendors ---------------------------------------------------------------------------


class Fake:
    """One tools/fakes/*_fake.py child process on an ephemeral port, logging to a JSON-lines file."""

    def __init__(self, script: str, key: str, workdir: Path):
        self.script = script
        self.key = key
        self.log_path = workdir / f"{Path(script).stem}.log.jsonl"
        self.stderr_path = workdir / f"{Path(script).stem}.stderr.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "Fake":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        cmd = [sys.executable, str(FAKES_DIR / self.script), "--port", "0", "--key", self.key, "--log", str(self.log_path)]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd=FAKES_DIR)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline().decode()), daemon=True)
        reader.start()
        reader.join(FAKE_START_TIMEOUT_S)
        line = lines[0].strip() if lines else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{self.script} did not print 'PORT n' (got {line!r}); stderr:\n"
                               f"{self.stderr_path.read_text('utf-8', 'replace')}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def requests(self, text: str) -> list[dict]:
        """The requests whose last user text was exactly `text`."""
        return [e for e in self.entries() if "path" in e and e.get("text") == text]


@pytest.fixture(scope="module")
def fakes(session_dir: Path):
    workdir = session_dir / "vendor-fakes"
    started: dict[str, Fake] = {}
    try:
        for name, script, key in (("openai", "openai_fake.py", OPENAI_KEY),
                                  ("anthropic", "anthropic_fake.py", ANTHROPIC_KEY),
                                  ("gemini", "gemini_fake.py", GEMINI_KEY)):
            started[name] = Fake(script, key, workdir).start()
        yield started
    finally:
        for fake in started.values():
            fake.stop()


@pytest.fixture(scope="module")
def vendor_server(servers: ServerPool, fakes: dict[str, Fake]):
    """prism-server (h2c) whose vendor plugins point at the fakes, through the env a user would set."""
    server = servers.start("vendors-h2c", [], "h2c", env=vendor_env(fakes))
    try:
        yield server
    finally:
        server.stop()


def vendor_env(fakes: dict[str, Fake]) -> dict[str, str]:
    """The environment that points the vendor plugins at the fakes (failing the test if the plugins
    are not built), as a user would set it."""
    folder = server_binary().parent
    missing = [p for p in PLUGINS if not (folder / p).is_file()]
    if missing:
        pytest.fail(f"vendor plugins missing beside {server_binary()}: {missing} (run swift build)")
    return {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{fakes['openai'].port}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fakes['anthropic'].port}",
        "GEMINI_API_KEY": GEMINI_KEY,
        "GEMINI_BASE_URL": f"http://127.0.0.1:{fakes['gemini'].port}/v1beta",
        # Never reach a real vendor or a proxy from the developer's environment.
        "HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "", "ALL_PROXY": "", "all_proxy": "",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }


# --- helpers ------------------------------------------------------------------------------------


def png(width: int, height: int, level: int = -1) -> bytes:
    """A real PNG (8-bit grey, a diagonal gradient), made without any imaging library; `level` is
    zlib's, so one picture can be had in several encodings."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\x00" + bytes((x + y) % 256 for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, level)) + chunk(b"IEND", b"")


def request(text: str, model: str, *, media: list[prism_pb2.Media] = (), fallbacks: list[str] = (),
            tools: list[prism_pb2.Tool] = ()) -> prism_pb2.GenerateRequest:
    parts = [prism_pb2.Part(text=text)] + [prism_pb2.Part(media=m) for m in media]
    return prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=parts)],
        tools=list(tools),
        route=prism_pb2.Route(model=model, fallbacks=list(fallbacks)))


def generate(server: PrismServer, req: prism_pb2.GenerateRequest, metadata=()):
    """All events of one Generate (sent with `metadata`), and the grpc.RpcError it ended with (None for OK)."""
    events = []
    with server.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Generate(req, metadata=list(metadata), timeout=RPC_TIMEOUT_S)
        try:
            for event in call:
                events.append(event)
        except grpc.RpcError as err:
            return events, err
    return events, None


def of_kind(events, kind: str):
    return [getattr(e, kind) for e in events if e.WhichOneof("event") == kind]


def text_of(events) -> str:
    return "".join(t.text for t in of_kind(events, "text"))


def ok(events, err, what: str) -> None:
    assert err is None, f"{what}: expected OK, got {err.code().name}: {err.details()!r}; events {kinds(events)}"


def kinds(events) -> list[str]:
    return [e.WhichOneof("event") for e in events]


# --- the tests ----------------------------------------------------------------------------------


def test_list_providers_shows_the_vendor_models(vendor_server):
    with vendor_server.channel() as channel:
        reply = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
    models = {m.id: m for p in reply.providers for m in p.models}
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL):
        assert model in models, f"{model} not listed; the server has {sorted(models)}"
    # The vendors with a batch API say so in the matrix (SubmitBatch will use it).
    assert models[OPENAI_MODEL].features.batch and models[ANTHROPIC_MODEL].features.batch
    # List prices, micro-dollars per million tokens: $2.50/$10 (gpt-4o), $3/$15 (Sonnet 4.5),
    # $0.30/$2.50 (2.5 Flash); a model priced per minute (whisper-1) has none.
    def price(model):
        return (models[model].pricing.input_usd_micros_per_million_tokens, models[model].pricing.output_usd_micros_per_million_tokens)
    assert price(OPENAI_MODEL) == (2_500_000, 10_000_000), models[OPENAI_MODEL].pricing
    assert price(ANTHROPIC_MODEL) == (3_000_000, 15_000_000), models[ANTHROPIC_MODEL].pricing
    assert price(GEMINI_MODEL) == (300_000, 2_500_000), models[GEMINI_MODEL].pricing
    assert price("openai/whisper-1") == (0, 0), models["openai/whisper-1"].pricing


def test_openai_text_streams_with_usage(vendor_server, fakes):
    prompt = "hello from interop"
    events, err = generate(vendor_server, request(prompt, OPENAI_MODEL))
    ok(events, err, "openai text")
    assert kinds(events)[0] == "routed", kinds(events)
    routed = events[0].routed
    assert routed.model == OPENAI_MODEL and routed.attempt == 1, routed
    texts = of_kind(events, "text")
    assert len(texts) >= 2, f"expected the answer in several deltas: {texts}"
    assert text_of(events) == f"You said: {prompt}"
    usage = of_kind(events, "usage")
    assert len(usage) == 1 and usage[0].input_tokens == 16 and usage[0].output_tokens == 7, usage
    # Priced by the gateway from gpt-4o's row: 16 × $2.50 + 7 × $10 per million tokens.
    assert usage[0].cost_usd_micros == 110, usage
    finished = of_kind(events, "finished")
    assert len(finished) == 1 and finished[0].stop_reason == prism_pb2.STOP_END_TURN, finished
    assert kinds(events)[-1] == "finished", kinds(events)

    sent = fakes["openai"].requests(prompt)
    assert len(sent) == 1, sent
    assert sent[0]["auth"] == "ok" and sent[0]["path"] == "/v1/chat/completions", sent[0]
    body = sent[0]["body"]
    assert body["model"] == "gpt-4o" and body["stream"] is True, body
    assert (body.get("stream_options") or {}).get("include_usage") is True, body


def test_openai_image_is_fitted_before_sending(vendor_server, fakes):
    prompt = "what is this wide picture"
    image = prism_pb2.Media(mime_type="image/png", data=png(3000, 1000), name="wide.png")
    events, err = generate(vendor_server, request(prompt, OPENAI_MODEL, media=[image]))
    ok(events, err, "openai image")
    routed = events[0].routed
    assert any("wide.png" in a and "3000" in a for a in routed.adaptations), \
        f"the routed event should say the image was fitted: {list(routed.adaptations)}"

    sent = fakes["openai"].requests(prompt)
    assert len(sent) == 1, sent
    images = sent[0]["body"]["images"]
    assert len(images) == 1, images
    sent_image = images[0]
    width, height = sent_image["width"], sent_image["height"]
    assert 0 < width <= 2048 and 0 < height <= 2048, f"sent {width}x{height}, beyond the model's 2048 limit"
    assert width < 3000, f"the image was sent at {width}x{height}, not fitted"
    assert abs(width / height - 3.0) < 0.05, f"aspect ratio lost: {width}x{height}"
    assert sent_image["mime"] in ("image/png", "image/jpeg", "image/webp"), sent_image
    assert sent_image["newlines"] is False, "the base64 data has newlines"
    content = [p for m in sent[0]["body"]["messages"] if isinstance(m.get("content"), list) for p in m["content"]]
    urls = [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
    assert len(urls) == 1 and urls[0].startswith(f"data:{sent_image['mime']};base64,"), urls
    assert f"[image {width}x{height} " in text_of(events), text_of(events)


def test_openai_tool_calls_arrive_joined(vendor_server, fakes):
    prompt = "use a tool please"
    tools = [prism_pb2.Tool(name="get_weather", description="The weather in a city",
                            input_schema_json='{"type":"object","properties":{"city":{"type":"string"}}}'),
             prism_pb2.Tool(name="get_time", description="The time in a zone",
                            input_schema_json='{"type":"object","properties":{"tz":{"type":"string"}}}')]
    events, err = generate(vendor_server, request(prompt, OPENAI_MODEL, tools=tools))
    ok(events, err, "openai tool call")
    calls = of_kind(events, "tool_call")
    got = [(c.id, c.name, json.loads(c.arguments_json)) for c in calls]
    assert got == [("call_a1", "get_weather", {"city": "Paris"}), ("call_b2", "get_time", {"tz": "CET"})], \
        f"tool calls not joined: {[(c.id, c.name, c.arguments_json) for c in calls]}"
    finished = of_kind(events, "finished")
    assert len(finished) == 1 and finished[0].stop_reason == prism_pb2.STOP_TOOL_USE, finished
    assert len(fakes["openai"].requests(prompt)) == 1


def test_overloaded_anthropic_falls_back_to_openai_before_the_first_token(vendor_server, fakes):
    prompt = "overloaded hi from interop"
    events, err = generate(vendor_server, request(prompt, ANTHROPIC_MODEL, fallbacks=[OPENAI_MODEL]))
    ok(events, err, "fallback")
    routed = [(r.model, r.attempt) for r in of_kind(events, "routed")]
    assert len(routed) >= 2, f"expected a fallback (two routed events), got {routed}"
    assert routed[0] == (ANTHROPIC_MODEL, 1), routed
    assert routed[-1][0] == OPENAI_MODEL and routed[-1][1] > 1, routed
    assert [r[1] for r in routed] == sorted(set(r[1] for r in routed)), f"attempts not increasing: {routed}"
    # Every routed event comes before the first token: nothing was streamed from anthropic.
    first_text = kinds(events).index("text")
    assert all(k != "routed" for k in kinds(events)[first_text:]), kinds(events)
    assert text_of(events) == f"You said: {prompt}", "the answer is openai's echo"
    assert of_kind(events, "finished"), kinds(events)
    anthropic_attempts = sum(1 for model, _ in routed if model == ANTHROPIC_MODEL)
    assert len(fakes["anthropic"].requests(prompt)) == anthropic_attempts, "one anthropic request per attempt"
    assert len(fakes["openai"].requests(prompt)) == 1


def test_stream_cut_midway_ends_non_ok_after_partial_text(vendor_server, fakes):
    prompt = "cut"
    before = len(fakes["openai"].requests(prompt))
    events, err = generate(vendor_server, request(prompt, OPENAI_MODEL))
    assert err is not None, f"a cut stream ended OK: {kinds(events)}"
    assert err.code() != grpc.StatusCode.OK
    assert err.code() == grpc.StatusCode.UNAVAILABLE, f"{err.code().name}: {err.details()!r}"
    assert text_of(events) == "partial answer", f"partial text before the cut: {text_of(events)!r}"
    assert not of_kind(events, "finished"), "a cut stream must not say finished"
    assert len(fakes["openai"].requests(prompt)) - before == 1, "no retry after content was streamed"


def test_vendor_401_is_failed_precondition_naming_the_provider(vendor_server, fakes):
    prompt = "status-401 please"
    events, err = generate(vendor_server, request(prompt, OPENAI_MODEL))
    assert err is not None, f"a 401 from the vendor ended OK: {kinds(events)}"
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, f"{err.code().name}: {err.details()!r}"
    assert "provider openai" in err.details(), err.details()
    assert OPENAI_KEY not in err.details(), "the key leaked into the status message"
    assert not of_kind(events, "text"), text_of(events)
    assert len(fakes["openai"].requests(prompt)) == 1, "a rejected key is not retried"


def test_gemini_text_streams(vendor_server, fakes):
    prompt = "hello gemini from interop"
    events, err = generate(vendor_server, request(prompt, GEMINI_MODEL))
    ok(events, err, "gemini text")
    routed = events[0].routed
    assert kinds(events)[0] == "routed" and routed.model == GEMINI_MODEL and routed.attempt == 1, events[0]
    assert len(of_kind(events, "text")) >= 2, of_kind(events, "text")
    assert text_of(events) == f"You said: {prompt}"
    finished = of_kind(events, "finished")
    assert len(finished) == 1 and finished[0].stop_reason == prism_pb2.STOP_END_TURN, finished
    usage = of_kind(events, "usage")
    assert usage and usage[-1].input_tokens == 9, usage
    sent = fakes["gemini"].requests(prompt)
    assert len(sent) == 1 and sent[0]["auth"] == "ok", sent
    assert sent[0]["path"].startswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent"), sent[0]["path"]


def test_rejected_key_is_failed_precondition_naming_the_provider(servers: ServerPool, session_dir: Path):
    """A real 401: the gateway's OPENAI_API_KEY is not the one the vendor expects."""
    fake = Fake("openai_fake.py", "sk-the-right-one", session_dir / "vendor-fakes-wrong-key").start()
    server = None
    try:
        server = servers.start("vendors-wrong-key-h2c", [], "h2c", env={
            "OPENAI_API_KEY": "sk-wrong-secret", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1",
            "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        prompt = "hi with the wrong key"
        events, err = generate(server, request(prompt, OPENAI_MODEL))
        assert err is not None, f"a rejected key ended OK: {kinds(events)}"
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, f"{err.code().name}: {err.details()!r}"
        assert "provider openai" in err.details(), err.details()
        assert "sk-wrong-secret" not in err.details(), "the key leaked into the status message"
        assert not of_kind(events, "text"), text_of(events)
        sent = fake.requests(prompt)
        assert len(sent) == 1 and sent[0]["auth"] == "wrong", f"a rejected key is not retried: {sent}"
    finally:
        if server is not None:
            server.stop()
        fake.stop()


def test_prices_from_the_config_file_replace_the_defaults_and_a_bad_one_fails_the_plugin(servers: ServerPool, fakes, session_dir: Path):
    config = session_dir / "vendor-prices.json"
    config.write_text(json.dumps({"plugins": {"config": {
        "openai": {"prices": {"gpt-4o": [1, 2], "gpt-4o-mini": [0.5, 0.25]}},
        "anthropic": {"prices": {"claude-sonnet-4-5": [3]}}}}}))
    env = {
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{fakes['openai'].port}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fakes['anthropic'].port}",
        "GEMINI_API_KEY": "", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    server = servers.start("vendor-prices-h2c", ["--config", str(config)], "h2c", env=env)
    try:
        with server.channel() as channel:
            reply = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
        models = {m.id: m.pricing for p in reply.providers for m in p.models}
        assert (models[OPENAI_MODEL].input_usd_micros_per_million_tokens, models[OPENAI_MODEL].output_usd_micros_per_million_tokens) == (1_000_000, 2_000_000)
        assert models["openai/gpt-4o-mini"].output_usd_micros_per_million_tokens == 250_000
        assert models["openai/gpt-4.1"].input_usd_micros_per_million_tokens == 2_000_000, "a default not overridden stays"
        anthropic = next(p for p in reply.providers if p.plugin == "libprism-plugin-anthropic.so")
        assert anthropic.state == prism_pb2.PROVIDER_STATE_FAILED, anthropic
        assert "prices.claude-sonnet-4-5 must be [input, output]" in anthropic.state_reason, anthropic.state_reason

        prompt = "hello priced by config"
        events, err = generate(server, request(prompt, OPENAI_MODEL))
        ok(events, err, "openai with configured prices")
        usage = of_kind(events, "usage")
        assert usage and usage[0].cost_usd_micros == (16 * 1 + 7 * 2), usage
    finally:
        server.stop()



def test_sigterm_with_streams_still_running_cuts_them_and_exits_cleanly(servers: ServerPool, fakes, session_dir: Path):
    """Streams that outlive the grace period are cut, their vendor calls cancelled, and the server
    exits 0 without scheduling work on event loops it has already stopped."""
    config = session_dir / "vendor-short-grace.json"
    config.write_text(json.dumps({"limits": {"shutdown_grace_seconds": 1}}))
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{fakes['openai'].port}/v1",
           "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    server = servers.start("vendor-short-grace-h2c", ["--config", str(config)], "h2c", env=env)
    first_text = threading.Barrier(9, timeout=RPC_TIMEOUT_S)
    outcomes: list[str] = []

    def stream(n: int) -> None:
        with server.channel() as channel:
            call = prism_pb2_grpc.PrismStub(channel).Generate(request(f"slow shutdown {n}", OPENAI_MODEL), timeout=RPC_TIMEOUT_S)
            seen_text = False
            try:
                for event in call:
                    if event.WhichOneof("event") == "text" and not seen_text:
                        seen_text = True
                        first_text.wait()
                outcomes.append("OK")
            except grpc.RpcError as err:
                outcomes.append(err.code().name)

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    first_text.wait()  # every stream is answering (a slow answer lasts 10 s)
    code = server.stop()
    for t in threads:
        t.join(RPC_TIMEOUT_S)
    assert code == 0, f"exit code {code}"
    assert len(outcomes) == 8 and "OK" not in outcomes, f"streams were not cut by the shutdown: {outcomes}"
    log = server.log_path.read_text("utf-8", "replace")
    assert "grace period over" in log, log[-2000:]
    assert "Cannot schedule tasks" not in log, "work was scheduled on a stopped event loop:\n" + log[-3000:]
    # The vendor saw every cut call go away before its answer was complete.
    texts = {f"slow shutdown {n}" for n in range(8)}
    deadline = time.monotonic() + 10
    while True:
        gone = {e.get("text") for e in fakes["openai"].entries() if e.get("event") == "disconnected"} & texts
        done = {e.get("text") for e in fakes["openai"].entries() if e.get("event") == "completed"} & texts
        if gone == texts or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert gone == texts and not done, f"the vendor saw {sorted(gone)} disconnect and {sorted(done)} complete"
