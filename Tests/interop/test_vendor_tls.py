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
from test_http1 import metrics
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

# The OpenAI fake's flood scenario (tools/fakes/openai_fake.py), and the most it may send to a client
# that reads nothing: one 256 KiB stream window, the TLS front's buffers and the loopback sockets'
# (a few MiB each way), far below the whole answer.
FLOOD_DELTAS = 16384
FLOOD_DELTA_BYTES = 4096
FLOOD_BOUND_BYTES = 24 << 20

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


def io_loops(server) -> int:
    """How many host I/O loops the server runs (one per core): each keeps its own connections."""
    family = metrics(server).get("prism_io_loop_transfers")
    loops = {s.labels["loop"] for s in family.samples} if family else set()
    assert loops, "the server exposes no prism_io_loop_transfers series"
    return len(loops)


def test_sequential_calls_reuse_the_connections_of_each_io_loop(tls_server, fronts):
    """Each host I/O loop keeps its HTTP/2 connection to an origin: calls one at a time open at
    most one per loop, and every connection after the server's first resumes its TLS session."""
    front = fronts["openai"]
    warm_up = "tls connections warm up"
    events, err = generate(tls_server, request(warm_up, OPENAI_MODEL))
    ok(events, err, warm_up)
    before = len(front.entries())
    known_ports = {e["port"] for e in front.entries()}
    loops = io_loops(tls_server)
    calls = 3 * loops + 1
    for i in range(calls):
        prompt = f"one tls connection per loop {i}"
        events, err = generate(tls_server, request(prompt, OPENAI_MODEL))
        ok(events, err, prompt)
        assert text_of(events) == f"You said: {prompt}"
    entries = new_entries(front, before, calls)
    ports = {e["port"] for e in entries}
    assert len(ports) <= loops, f"{calls} calls one at a time on {loops} I/O loops used {len(ports)} TLS connections: {entries}"
    assert all(e["alpn"] == "h2" for e in entries), entries
    new = [e for e in entries if e["port"] not in known_ports]
    assert all(e["reused"] == "r" for e in new), f"a connection after the server's first did a full TLS handshake: {new}"


def test_concurrent_streams_share_connections_and_a_cancel_resets_only_its_own(tls_server, fakes, fronts):
    """Streams in flight at once are multiplexed on each loop's connection (HTTP/2), and
    cancelling one resets its stream — the vendor sees it go — while the others stream on."""
    front = fronts["openai"]
    loops = io_loops(tls_server)
    before = len(front.entries())
    slow = [SlowCall(tls_server, f"multiplexed {i} slow", OPENAI_MODEL) for i in range(2 * loops + 1)]
    try:
        for call in slow:
            assert call.streaming(), f"a slow call did not stream: {call.error}"
        entries = new_entries(front, before, len(slow))
        ports = {e["port"] for e in entries}
        assert len(ports) <= loops, f"{len(slow)} streams at once on {loops} I/O loops used {len(ports)} connections: {entries}"

        cancelled, others = slow[0], slow[1:]
        counts = [len(call.events) for call in others]
        cancelled.cancel()
        assert cancelled.error is not None and cancelled.error.code() == grpc.StatusCode.CANCELLED, cancelled.error
        assert wait_for_fake_event(fakes["openai"], "multiplexed 0 slow") == "disconnected", \
            "the fake did not see the cancelled stream go"
        deadline = time.monotonic() + CANCEL_SEEN_TIMEOUT_S
        while time.monotonic() < deadline and not all(len(c.events) > n + 2 for c, n in zip(others, counts)):
            time.sleep(0.05)
        assert all(c.error is None and len(c.events) > n + 2 for c, n in zip(others, counts)), \
            f"a stream beside the cancelled one stopped: {[(n, len(c.events), c.error) for c, n in zip(others, counts)]}"
        gone = [e for e in fakes["openai"].entries() if e.get("event") == "disconnected" and e.get("text", "").startswith("multiplexed ")]
        assert [e["text"] for e in gone] == ["multiplexed 0 slow"], f"streams beside the cancelled one ended at the fake: {gone}"
    finally:
        for call in slow:
            call.cancel()


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

    # Only the stream was reset: the next call is served as usual, on a connection kept open (or a
    # new one on another I/O loop, resuming the TLS session).
    known_ports = {e["port"] for e in front.entries()}
    prompt = f"after a cancel over tls {vendor}"
    events, err = generate(tls_server, request(prompt, model))
    ok(events, err, prompt)
    [after] = new_entries(front, before + 1, 1)
    assert after["alpn"] == "h2" and (after["port"] in known_ports or after["reused"] == "r"), after


def test_an_unread_stream_holds_the_vendor_back_on_a_shared_connection(tls_server, fakes, fronts):
    """A client that stops reading pauses its vendor stream only: the host returns none of that
    stream's HTTP/2 window, so the vendor stops after about one window (plus what the front and
    the sockets buffer) instead of the 64 MiB answer, while calls beside it complete; once read,
    the whole answer arrives."""
    front = fronts["openai"]
    before = len(front.entries())
    channel = tls_server.channel()
    try:
        flood = prism_pb2_grpc.PrismStub(channel).Generate(request("flood", OPENAI_MODEL), timeout=RPC_TIMEOUT_S)
        deadline = time.monotonic() + CANCEL_SEEN_TIMEOUT_S
        blocked = []
        while time.monotonic() < deadline and not blocked:
            blocked = [e for e in fakes["openai"].entries() if e.get("event") == "blocked" and e.get("text") == "flood"]
            time.sleep(0.05)
        assert blocked, "the vendor never blocked: the host read on for a client that reads nothing"
        sent = blocked[-1]["sent"] * FLOOD_DELTA_BYTES
        assert sent < FLOOD_BOUND_BYTES, f"the vendor sent {sent} bytes before it blocked"

        loops = io_loops(tls_server)
        for i in range(2 * loops):
            prompt = f"beside a paused stream {i}"
            events, err = generate(tls_server, request(prompt, OPENAI_MODEL))
            ok(events, err, prompt)
        entries = new_entries(front, before, 1 + 2 * loops)
        flooded = entries[0]
        assert not [e for e in fakes["openai"].entries() if e.get("event") == "completed" and e.get("text") == "flood"], \
            "the whole answer went out while nobody read it"
        assert any(e["port"] == flooded["port"] for e in entries[1:]), \
            f"no call shared the paused stream's connection: {entries}"

        received = sum(len(e.text.text.encode()) for e in flood if e.WhichOneof("event") == "text")
        assert received == FLOOD_DELTAS * FLOOD_DELTA_BYTES, received
    finally:
        channel.close()


def test_a_stream_cut_behind_the_tls_front_ends_unavailable_after_partial_text(tls_server, fakes):
    """The fake closes its connection mid-body; the front resets our HTTP/2 stream, which must end
    the call UNAVAILABLE after the text that came, not OK and not as a hang. (The front may drop
    what it had not yet forwarded when its backend breaks, so the text is a prefix of the fake's.)"""
    events, err = generate(tls_server, request("cut", OPENAI_MODEL))
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE, (kinds(events), err)
    assert "partial answer".startswith(text_of(events)), text_of(events)
    assert "finished" not in kinds(events), kinds(events)


def test_a_vendor_without_http2_is_served_over_http1(servers, fakes, fronts, certs, session_dir):
    """A TLS server whose ALPN offers http/1.1 only: the host's HTTP/2 client hands the origin to
    curl, which speaks HTTP/1.1 to it, for the first call and the ones after."""
    front = TLSFront("http1-only", fakes["openai"].port, certs.server_cert, certs.server_key,
                     session_dir / "vendor-tls-fronts", http2=False).start()
    try:
        urls = {name: f.url for name, f in fronts.items()} | {"openai": front.url}
        server = servers.start("vendors-tls-http1", [], "h2c", env=vendor_env(urls, SSL_CERT_FILE=str(certs.ca_cert)))
        try:
            for i in range(3):
                prompt = f"hello http/1.1 front {i}"
                events, err = generate(server, request(prompt, OPENAI_MODEL))
                ok(events, err, prompt)
                assert text_of(events) == f"You said: {prompt}"
        finally:
            server.stop()
        entries = new_entries(front, 0, 3)
        assert all(e["alpn"] == "http/1.1" and e["protocol"] == "HTTP/1.1" for e in entries), entries
    finally:
        front.stop()


def established_connections_to(port: int) -> int:
    """TCP connections in this network namespace that are established to 127.0.0.1:`port`."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == f"0100007F:{port:04X}" and fields[3] == "01":
            count += 1
    return count


def test_a_connection_the_vendor_closed_while_idle_is_not_reused(servers, fakes, fronts, certs, session_dir):
    """Vendors close idle connections: the next call must open a new one (resuming the TLS
    session), not fail on the closed one."""
    front = TLSFront("idle-closing", fakes["openai"].port, certs.server_cert, certs.server_key,
                     session_dir / "vendor-tls-fronts", read_timeout="1s").start()
    try:
        urls = {name: f.url for name, f in fronts.items()} | {"openai": front.url}
        server = servers.start("vendors-tls-idle-close", [], "h2c", env=vendor_env(urls, SSL_CERT_FILE=str(certs.ca_cert)))
        try:
            events, err = generate(server, request("before the idle close", OPENAI_MODEL))
            ok(events, err, "before the idle close")
            deadline = time.monotonic() + CANCEL_SEEN_TIMEOUT_S
            while established_connections_to(front.port) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert established_connections_to(front.port) == 0, "the front did not close the idle connection"
            events, err = generate(server, request("after the idle close", OPENAI_MODEL))
            ok(events, err, "after the idle close")
            assert text_of(events) == "You said: after the idle close"
        finally:
            server.stop()
        first, second = new_entries(front, 0, 2)
        assert second["port"] != first["port"] and second["reused"] == "r", (first, second)
    finally:
        front.stop()


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
