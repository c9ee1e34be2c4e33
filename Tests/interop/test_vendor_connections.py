"""Vendor connection reuse by the host's HTTP exchanges for plugins (PrismProviders/HTTPExchange.swift, ConnectionShare.swift): after a
burst of concurrent calls, later calls (concurrent or one at a time) go over the connections the
burst left open instead of opening new ones. Counted by the fake OpenAI vendor, which logs every
TCP connection it accepts (tools/fakes/fakeserver.py); the server and fakes are test_vendors.py's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from prism.v1 import prism_pb2_grpc

from test_vendors import OPENAI_MODEL, Fake, fakes, generate, ok, request, text_of, vendor_server  # noqa: F401 (fixtures)

# More concurrent calls than the old client kept idle handles (16), so a client that ties
# connections to a bounded pool of handles opens new connections for the second burst.
BURST = 24
SEQUENTIAL = 8


def connections(fake: Fake) -> int:
    return sum(1 for e in fake.entries() if e.get("event") == "connection")


def burst(server, prefix: str) -> None:
    """BURST calls of the fake's `slow` scenario (10 s each) at once, so all of them overlap."""
    prompts = [f"{prefix} {i} slow" for i in range(BURST)]
    with ThreadPoolExecutor(BURST) as pool:
        results = list(pool.map(lambda p: generate(server, request(p, OPENAI_MODEL)), prompts))
    for prompt, (events, err) in zip(prompts, results):
        ok(events, err, prompt)


def test_calls_after_a_burst_reuse_its_connections(vendor_server, fakes):
    fake = fakes["openai"]
    before = connections(fake)

    burst(vendor_server, "reuse burst one")
    first = connections(fake) - before
    assert 1 <= first <= BURST, f"the first burst of {BURST} calls opened {first} connections"

    burst(vendor_server, "reuse burst two")
    second = connections(fake) - before - first
    assert second == 0, f"a second burst of {BURST} opened {second} new connections beside the {first} left open"

    for i in range(SEQUENTIAL):
        prompt = f"reuse one at a time {i}"
        events, err = generate(vendor_server, request(prompt, OPENAI_MODEL))
        ok(events, err, prompt)
        assert text_of(events) == f"You said: {prompt}"
    after = connections(fake) - before - first
    assert after == 0, f"{SEQUENTIAL} calls one at a time opened {after} new connections beside the {first} left open"


def test_a_cancelled_call_does_not_leave_its_connection_for_reuse(vendor_server, fakes):
    """An aborted HTTP/1.1 transfer must close its connection: the vendor is still sending the old
    answer on it, which the next call would read as its own."""
    fake = fakes["openai"]
    with vendor_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as ended:
            list(prism_pb2_grpc.PrismStub(channel).Generate(request("reuse cancelled slow", OPENAI_MODEL), timeout=1.0))
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (ended.value.code(), ended.value.details())
    [cancelled] = fake.requests("reuse cancelled slow")

    prompt = "reuse after cancel"
    events, err = generate(vendor_server, request(prompt, OPENAI_MODEL))
    ok(events, err, "the call after a cancelled one")
    assert text_of(events) == f"You said: {prompt}"
    [after] = fake.requests(prompt)
    assert after["peer_port"] != cancelled["peer_port"], "the call after the cancel reused the aborted connection"
