"""The gateway's vendor keys never leave it except toward their vendor: not in any status a client
sees, not in ListProviders, and not in the server's own log even at `--log-level trace`, whether the
call succeeds, is rate-limited, fails at the vendor, is cut mid-stream, or is refused for a wrong
key. The keys are distinctive strings so that any copy of them, whole, is found."""

from __future__ import annotations

from pathlib import Path

import grpc
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool, server_binary
from harness import RPC_TIMEOUT_S
from test_vendors import ANTHROPIC_MODEL, GEMINI_MODEL, OPENAI_MODEL, Fake, generate, request

KEYS = {"openai": "sk-SECRET-4f1c9a77e2", "anthropic": "ak-SECRET-9b2d6e10c4", "gemini": "gk-SECRET-3e8f5a21d7"}
SCRIPTS = {"openai": "openai_fake.py", "anthropic": "anthropic_fake.py", "gemini": "gemini_fake.py"}
MODELS = {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL, "gemini": GEMINI_MODEL}
# What each prompt makes the fakes do (see tools/fakes/*_fake.py): answer, rate-limit, fail, cut.
SCENARIOS = ("hello secrets", "status-429 secrets", "status-500 secrets", "cut secrets")


def start_server(servers: ServerPool, name: str, fakes: dict[str, Fake], keys: dict[str, str]):
    env = {
        "OPENAI_API_KEY": keys["openai"], "OPENAI_BASE_URL": f"http://127.0.0.1:{fakes['openai'].port}/v1",
        "ANTHROPIC_API_KEY": keys["anthropic"], "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fakes['anthropic'].port}",
        "GEMINI_API_KEY": keys["gemini"], "GEMINI_BASE_URL": f"http://127.0.0.1:{fakes['gemini'].port}/v1beta",
        "HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "", "ALL_PROXY": "", "all_proxy": "",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    return servers.start(name, ["--log-level", "trace"], "h2c", env=env)


def assert_no_key(text: str, where: str) -> None:
    for vendor, key in KEYS.items():
        assert key not in text, f"the {vendor} key appears in {where}"


def test_keys_stay_out_of_statuses_listings_and_trace_logs(servers: ServerPool, session_dir: Path):
    assert server_binary().is_file()
    workdir = session_dir / "vendor-secrets"
    fakes = {name: Fake(SCRIPTS[name], KEYS[name], workdir).start() for name in KEYS}
    wrong = {name: key.replace("SECRET", "WRONG") for name, key in KEYS.items()}
    server = wrong_server = None
    try:
        server = start_server(servers, "vendor-secrets", fakes, KEYS)
        wrong_server = start_server(servers, "vendor-secrets-wrong", fakes, wrong)
        seen = []  # every status and detail a client received
        answered = 0
        for vendor, model in MODELS.items():
            for prompt in SCENARIOS:
                events, err = generate(server, request(f"{prompt} {vendor}", model))
                if err is None:
                    answered += 1
                else:
                    seen.append(f"{err.code().name}: {err.details()} {err.trailing_metadata()}")
            events, err = generate(wrong_server, request(f"hello wrong key {vendor}", model))
            assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, \
                f"{vendor} with a wrong key: {err.code().name if err else 'OK'}"
            seen.append(f"{err.code().name}: {err.details()} {err.trailing_metadata()}")
        # The scenarios did run: each vendor answered once and failed in the other three ways.
        assert answered == len(MODELS), f"{answered} answers; statuses: {seen}"
        assert len(seen) == len(MODELS) * len(SCENARIOS), seen

        with server.channel() as channel:
            listing = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
        assert {p.name for p in listing.providers} >= set(KEYS), listing
        assert_no_key(str(listing), "ListProviders")
        assert_no_key("\n".join(seen), "a status the client received")
        # The keys reached their vendors: the fakes refused none of the right ones.
        for name, fake in fakes.items():
            assert any(e.get("auth") == "ok" for e in fake.entries()), f"{name} fake never saw its key"
    finally:
        for s in (server, wrong_server):
            if s is not None:
                s.stop()
        for fake in fakes.values():
            fake.stop()
    logs = {s.log_path.name: s.log_path.read_text("utf-8", "replace") for s in (server, wrong_server)}
    # The failures were logged, vendor messages included: the place a leaked key would show.
    assert "HTTP 429" in logs["vendor-secrets.stderr.log"], logs["vendor-secrets.stderr.log"][-2000:]
    assert "credentials" in logs["vendor-secrets-wrong.stderr.log"], logs["vendor-secrets-wrong.stderr.log"][-2000:]
    for name, log in logs.items():
        assert_no_key(log, f"the server log {name}")
