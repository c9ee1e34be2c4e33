"""The vendor plugins over HTTPS, as they talk to real vendors: each fake of tools/fakes behind a real
TLS + HTTP/2 front (nghttpx, tls_front.py) with a certificate from the suite's throwaway CA, which the
plugins trust through SSL_CERT_FILE / SSL_CERT_DIR (the host's exchanges for plugins, PrismProviders/HTTPExchange.swift and TrustStore.swift).
The front's access log says what the fakes cannot see: the ALPN protocol of each request, which
client connection carried it, and whether that connection resumed an earlier TLS session."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2_grpc

from conftest import ServerPool
from harness import RPC_TIMEOUT_S, Certs
from test_vendors import (ANTHROPIC_KEY, ANTHROPIC_MODEL, GEMINI_KEY, GEMINI_MODEL, OPENAI_KEY, OPENAI_MODEL,  # noqa: F401
                          Fake, fakes, generate, kinds, ok, request, text_of)
from tls_front import TLSFront

# vendor -> (model, the path its streaming endpoint starts with)
VENDORS = {
    "openai": (OPENAI_MODEL, "/v1/chat/completions"),
    "anthropic": (ANTHROPIC_MODEL, "/v1/messages"),
    "gemini": (GEMINI_MODEL, "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
}
# How long the fakes' slow scenario may take to show a cancellation (the whole answer takes 10 s,
# so a fake that logs "completed" instead never saw the client go).
CANCEL_SEEN_TIMEOUT_S = 15.0

NO_PROXY_ENV = {"HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "", "ALL_PROXY": "",
                "all_proxy": "", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def vendor_env(urls: dict[str, str], **trust: str) -> dict[str, str]:
    """The environment a user sets: keys, base URLs and the trust store (unset unless given)."""
    return {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"{urls['openai']}/v1",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": urls["anthropic"],
            "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_BASE_URL": f"{urls['gemini']}/v1beta",
            "SSL_CERT_FILE": trust.get("SSL_CERT_FILE", ""), "SSL_CERT_DIR": trust.get("SSL_CERT_DIR", ""),
            **NO_PROXY_ENV}


@pytest.fixture(scope="module")
def fronts(certs: Certs, fakes: dict[str, Fake], session_dir: Path):
    """One TLS front per fake, with a certificate the suite's CA signed for 127.0.0.1."""
    started: dict[str, TLSFront] = {}
    try:
        for name, fake in fakes.items():
            started[name] = TLSFront(name, fake.port, certs.server_cert, certs.server_key,
                                     session_dir / "vendor-tls-fronts").start()
        yield started
    finally:
        for front in started.values():
            front.stop()


@pytest.fixture(scope="module")
def tls_server(servers: ServerPool, fronts: dict[str, TLSFront], certs: Certs):
    """prism-server whose plugins reach the fakes over HTTPS only, trusting the CA by SSL_CERT_FILE."""
    urls = {name: front.url for name, front in fronts.items()}
    server = servers.start("vendors-tls", [], "h2c", env=vendor_env(urls, SSL_CERT_FILE=str(certs.ca_cert)))
    try:
        yield server
    finally:
        server.stop()


def new_entries(front: TLSFront, before: int, count: int) -> list[dict]:
    """The `count` access-log entries after the first `before`, once written."""
    entries = front.wait_for_entries(before + count)[before:]
    assert len(entries) == count, f"expected {count} new requests at the {front.name} front, got {entries}"
    return entries


def of_text(events):
    return [e for e in events if e.WhichOneof("event") == "text"]


def wait_for_fake_event(fake: Fake, text: str) -> str:
    """'disconnected' or 'completed', whichever the fake logs first for the answer to `text`."""
    deadline = time.monotonic() + CANCEL_SEEN_TIMEOUT_S
    while time.monotonic() < deadline:
        for entry in fake.entries():
            if entry.get("text") == text and entry.get("event") in ("disconnected", "completed"):
                return entry["event"]
        time.sleep(0.05)
    return "nothing"


class SlowCall:
    """A Generate of the fakes' slow scenario, read on a thread until cancelled."""

    def __init__(self, server, prompt: str, model: str):
        self.channel = server.channel()
        self.call = prism_pb2_grpc.PrismStub(self.channel).Generate(request(prompt, model), timeout=RPC_TIMEOUT_S)
        self.first_text = threading.Event()
        self.events = []
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self.events.append(event)
                if event.WhichOneof("event") == "text":
                    self.first_text.set()
        except grpc.RpcError as err:
            self.error = err
        finally:
            self.first_text.set()

    def streaming(self) -> bool:
        """True once text arrives, so the vendor's answer is mid-stream on its connection."""
        self.first_text.wait(RPC_TIMEOUT_S)
        return self.error is None and bool(self.events)

    def cancel(self) -> None:
        self.call.cancel()
        self.thread.join(RPC_TIMEOUT_S)
        self.channel.close()


# --- HTTPS with HTTP/2 ----------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_streaming_over_tls_uses_http2(tls_server, fakes, fronts, vendor):
    model, path = VENDORS[vendor]
    front = fronts[vendor]
    before = len(front.entries())
    prompt = f"hello {vendor} over tls"
    events, err = generate(tls_server, request(prompt, model))
    ok(events, err, f"{vendor} over TLS")
    assert len(of_text(events)) >= 2, f"expected the answer in several deltas: {kinds(events)}"
    assert text_of(events) == f"You said: {prompt}"
    assert kinds(events)[-1] == "finished", kinds(events)

    sent = fakes[vendor].requests(prompt)
    assert len(sent) == 1 and sent[0]["auth"] == "ok", sent
    assert sent[0]["path"].startswith(path), sent[0]["path"]
    [entry] = new_entries(front, before, 1)
    assert entry["alpn"] == "h2" and entry["protocol"] == "HTTP/2", f"the plugin did not speak HTTP/2: {entry}"
    assert entry["tls"].startswith("TLSv1."), entry
    assert entry["path"].startswith(path) and entry["status"] == 200, entry


def test_sequential_calls_share_one_tls_connection(tls_server, fronts):
    front = fronts["openai"]
    before = len(front.entries())
    calls = 4
    for i in range(calls):
        prompt = f"one tls connection {i}"
        events, err = generate(tls_server, request(prompt, OPENAI_MODEL))
        ok(events, err, prompt)
        assert text_of(events) == f"You said: {prompt}"
    entries = new_entries(front, before, calls)
    ports = {e["port"] for e in entries}
    assert len(ports) == 1, f"{calls} calls one at a time used {len(ports)} TLS connections: {entries}"
    assert all(e["alpn"] == "h2" for e in entries), entries


def test_a_second_connection_resumes_the_tls_session(tls_server, fronts):
    """While one call holds the connection, the next opens a second one (HTTPClient's design: a
    connection busy on one thread is not shared with another), which must resume the TLS session
    the first handshake left in the client's share instead of doing a full handshake."""
    front = fronts["openai"]
    before = len(front.entries())
    prompt = "tls session warm up"
    events, err = generate(tls_server, request(prompt, OPENAI_MODEL))
    ok(events, err, prompt)
    new_entries(front, before, 1)
    known_ports = {e["port"] for e in front.entries()}
    before = len(front.entries())

    slow = SlowCall(tls_server, "tls session held slow", OPENAI_MODEL)
    try:
        assert slow.streaming(), f"the slow call did not stream: {slow.error}"
        [held] = new_entries(front, before, 1)
        prompt = "tls session second connection"
        events, err = generate(tls_server, request(prompt, OPENAI_MODEL))
        ok(events, err, prompt)
        [second] = new_entries(front, before + 1, 1)
    finally:
        slow.cancel()
    assert second["port"] != held["port"] and second["port"] not in known_ports, \
        f"expected a new connection beside the busy one {held} (known client ports {sorted(known_ports)}): {second}"
    assert second["reused"] == "r", f"the second TLS connection did a full handshake instead of resuming: {second}"
    assert second["alpn"] == "h2", second


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_cancellation_through_tls_reaches_the_fake(tls_server, fakes, fronts, vendor):
    model, _ = VENDORS[vendor]
    front = fronts[vendor]
    prompt = f"cancel {vendor} over tls slow"
    before = len(front.entries())
    slow = SlowCall(tls_server, prompt, model)
    assert slow.streaming(), f"the slow call did not stream: {slow.error}"
    [cancelled] = new_entries(front, before, 1)
    assert cancelled["alpn"] == "h2", cancelled
    slow.cancel()
    assert slow.error is not None and slow.error.code() == grpc.StatusCode.CANCELLED, slow.error
    assert wait_for_fake_event(fakes[vendor], prompt) == "disconnected", \
        f"{vendor}'s fake did not see the cancelled call go (its answer ran on)"

    # The cancelled call's connection was closed (HTTPTransfer's run(): libcurl would keep it open
    # without telling the vendor); the next call opens another, resuming the TLS session.
    prompt = f"after a cancel over tls {vendor}"
    events, err = generate(tls_server, request(prompt, model))
    ok(events, err, prompt)
    [after] = new_entries(front, before + 1, 1)
    assert after["port"] != cancelled["port"], f"the call after the cancel reused the aborted connection: {after}"
    assert after["reused"] == "r", f"the connection after the cancel did a full TLS handshake: {after}"


def test_a_deadline_through_tls_reaches_the_fake(tls_server, fakes):
    """A call that runs out of time ends its vendor stream too, not only the gRPC call."""
    prompt = "deadline over tls slow"
    with tls_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as ended:
            list(prism_pb2_grpc.PrismStub(channel).Generate(request(prompt, OPENAI_MODEL), timeout=1.0))
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (ended.value.code(), ended.value.details())
    assert wait_for_fake_event(fakes["openai"], prompt) == "disconnected", \
        "the fake went on streaming after the call's deadline"


# --- the trust store ------------------------------------------------------------------------------


def failing_call(servers: ServerPool, name: str, urls: dict[str, str], prompt: str, **trust: str) -> grpc.RpcError:
    """One OpenAI call through a server of its own with the given trust store; the error it ends with."""
    server = servers.start(name, [], "h2c", env=vendor_env(urls, **trust))
    try:
        events, err = generate(server, request(prompt, OPENAI_MODEL))
    finally:
        server.stop()
    assert err is not None, f"a call to a front the client must not trust ended OK: {kinds(events)}"
    assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION), \
        f"{err.code().name}: {err.details()!r}"
    assert not of_text(events), text_of(events)
    return err


def test_a_certificate_from_an_untrusted_ca_fails_clearly(servers, fakes, fronts, certs, session_dir):
    other = Certs(session_dir / "vendor-tls-untrusted-ca").generate()
    front = TLSFront("untrusted", fakes["openai"].port, other.server_cert, other.server_key,
                     session_dir / "vendor-tls-fronts").start()
    try:
        urls = {name: f.url for name, f in fronts.items()} | {"openai": front.url}
        prompt = "hello untrusted front"
        err = failing_call(servers, "vendors-tls-untrusted", urls, prompt, SSL_CERT_FILE=str(certs.ca_cert))
    finally:
        front.stop()
    details = err.details()
    assert "openai" in details and "TLS certificate" in details, details
    assert "unable to get local issuer certificate" in details, details
    assert f"SSL_CERT_FILE={certs.ca_cert}" in details, f"the message should name the trust store used: {details}"
    assert fakes["openai"].requests(prompt) == [], "a request crossed a connection the client did not trust"


def test_without_a_trust_store_setting_the_test_ca_is_not_trusted(servers, fakes, fronts):
    """Verification stays on by default: the system CAs do not include the suite's CA."""
    urls = {name: f.url for name, f in fronts.items()}
    prompt = "hello with the system cas"
    err = failing_call(servers, "vendors-tls-system-cas", urls, prompt)
    assert "TLS certificate" in err.details() and "system CAs" in err.details(), err.details()
    assert fakes["openai"].requests(prompt) == []


def test_ssl_cert_dir_is_honoured(servers, fronts, certs, session_dir):
    directory = session_dir / "vendor-tls-ca-dir"
    directory.mkdir(exist_ok=True)
    (directory / "test-ca.pem").write_bytes(certs.ca_cert.read_bytes())
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True)
    urls = {name: f.url for name, f in fronts.items()}
    server = servers.start("vendors-tls-cert-dir", [], "h2c", env=vendor_env(urls, SSL_CERT_DIR=str(directory)))
    try:
        prompt = "hello through SSL_CERT_DIR"
        events, err = generate(server, request(prompt, ANTHROPIC_MODEL))
    finally:
        server.stop()
    ok(events, err, "anthropic trusting the CA through SSL_CERT_DIR")
    assert text_of(events) == f"You said: {prompt}"
