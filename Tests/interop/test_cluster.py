"""Two prism-server replicas behind nginx (tools/cluster.sh, deploy/nginx.conf), from the clients a user
has: Health/Check and a streamed Generate through each front (gRPC over h2c and TLS with grpcio,
Connect+JSON over HTTP/1.1 and TLS), streams passed on as they are written and cancelled through
nginx, calls spread over both replicas (their own /metrics), gRPC over HTTP/1.1 answered by Prism,
and calls still answered after one replica is killed with -9 (last: it leaves one replica)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest
from grpc.health.v1 import health_pb2, health_pb2_grpc

from cluster import Cluster, require_cluster_tools, wait_for
from conftest import server_binary
from harness import RPC_TIMEOUT_S
from http1 import connect
from http1 import frame as envelope
from test_connect import post, streamed
from test_vendors import OPENAI_MODEL, fakes, generate, kinds, ok, request, text_of, vendor_env  # noqa: F401

# Health checks sent to see both replicas answer: round robin gives each half; a few suffice.
SPREAD_CALLS = 20
CHECK = "/grpc.health.v1.Health/Check"


@pytest.fixture(scope="module")
def cluster(session_dir: Path, fakes):
    require_cluster_tools()
    env = {**vendor_env(fakes), "PRISM_SERVER_BIN": str(server_binary())}
    running = Cluster(session_dir / "cluster", replicas=2, env=env).start()
    try:
        yield running
    finally:
        running.stop()


def health_check(server) -> int:
    with server.channel() as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S).status


def connect_generate(server, text: str):
    """A streamed Generate with Connect+JSON over HTTP/1.1: the events as JSON, and the end envelope."""
    body = json.dumps({"messages": [{"role": "ROLE_USER", "parts": [{"text": text}]}],
                       "route": {"model": OPENAI_MODEL}}).encode()
    status, headers, reply = post(server, "/prism.v1.Prism/Generate", envelope(body), content_type="application/connect+json")
    assert status == 200 and headers["content-type"] == "application/connect+json", (status, headers, reply[:300])
    messages, end = streamed(reply)
    return [json.loads(m) for m in messages], end


def handled(replica, method: str) -> float:
    return replica.metric("grpc_server_handled_total", grpc_method=method, grpc_code="OK")


@pytest.mark.parametrize("front", ["grpc", "tls"])
def test_health_check_through_nginx(cluster: Cluster, front: str):
    assert health_check(getattr(cluster, front)) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("front", ["grpc", "tls"])
def test_streamed_generate_through_nginx_with_grpc(cluster: Cluster, fakes, front: str):
    prompt = f"cluster grpc {front} {uuid.uuid4().hex[:8]}"
    events, err = generate(getattr(cluster, front), request(prompt, OPENAI_MODEL))
    ok(events, err, f"Generate through nginx ({front})")
    assert kinds(events)[0] == "routed" and kinds(events)[-1] == "finished", kinds(events)
    assert kinds(events).count("text") >= 2, f"the answer should arrive in several deltas: {kinds(events)}"
    assert text_of(events) == f"You said: {prompt}"
    assert len(fakes["openai"].requests(prompt)) == 1, "the vendor should see the call exactly once"


@pytest.mark.parametrize("front", ["http", "tls"])
def test_streamed_generate_through_nginx_with_connect_json(cluster: Cluster, fakes, front: str):
    prompt = f"cluster connect {front} {uuid.uuid4().hex[:8]}"
    events, end = connect_generate(getattr(cluster, front), prompt)
    assert end == {}, end
    assert next(iter(events[0])) == "routed" and next(iter(events[-1])) == "finished", events
    assert "".join(e["text"]["text"] for e in events if "text" in e) == f"You said: {prompt}"
    assert len(fakes["openai"].requests(prompt)) == 1


def test_a_stream_is_passed_on_as_written_and_its_cancel_reaches_the_vendor(cluster: Cluster, fakes):
    """The fake's `slow` answer takes 10 s: the first text must come through nginx long before the
    end (nothing buffered), and closing the connection then must cut the vendor's stream."""
    prompt = f"cluster slow {uuid.uuid4().hex[:8]}"
    body = json.dumps({"messages": [{"role": "ROLE_USER", "parts": [{"text": prompt}]}],
                       "route": {"model": OPENAI_MODEL}}).encode()
    conn = connect(cluster.http)
    try:
        conn.request("POST", "/prism.v1.Prism/Generate", body=envelope(body),
                     headers={"content-type": "application/connect+json"})
        response = conn.getresponse()
        assert response.status == 200, response.status
        seen = []
        while not any("text" in e for e in seen):
            head = response.read(5)
            assert len(head) == 5 and head[0] == 0, f"the stream ended before any text: {seen} {head!r}"
            seen.append(json.loads(response.read(int.from_bytes(head[1:], "big"))))
    finally:
        conn.close()
    entries = wait_for(lambda: [e for e in fakes["openai"].entries() if e.get("text") == prompt and "event" in e],
                       "the vendor's stream to end after the client left")
    assert entries[0]["event"] == "disconnected", f"the vendor's stream was not cut: {entries}"


def test_calls_are_spread_over_both_replicas(cluster: Cluster):
    before = [handled(r, "Check") for r in cluster.replicas]
    with cluster.grpc.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(SPREAD_CALLS):
            stub.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S)
    grown = [handled(r, "Check") - b for r, b in zip(cluster.replicas, before)]
    assert sum(grown) == SPREAD_CALLS, f"each call should be counted by exactly one replica: {grown}"
    assert all(g > 0 for g in grown), f"one replica served nothing: {grown}"
    # HTTP/1.1 (Connect) calls too, over their own upstream pool.
    before = [handled(r, "Check") for r in cluster.replicas]
    for _ in range(SPREAD_CALLS // 2):
        status, _, _ = post(cluster.http, CHECK, health_pb2.HealthCheckRequest().SerializeToString())
        assert status == 200, status
    grown = [handled(r, "Check") - b for r, b in zip(cluster.replicas, before)]
    assert sum(grown) == SPREAD_CALLS // 2 and all(g > 0 for g in grown), grown


def test_the_probes_and_metrics_pass_through(cluster: Cluster):
    assert cluster.http.get("/healthz") == (200, "ok\n")
    assert cluster.http.get("/readyz") == (200, "ready\n")
    status, text = cluster.http.get("/metrics")
    assert status == 200 and "grpc_server_handled_total" in text, (status, text[:200])


def test_grpc_over_http1_is_answered_by_prism_not_nginx(cluster: Cluster):
    """nginx sends native gRPC on to grpc_pass only over HTTP/2; over HTTP/1.1 Prism itself refuses it."""
    status, headers, body = post(cluster.http, CHECK, envelope(b""), content_type="application/grpc")
    assert status == 415, (status, headers, body)


def test_calls_go_on_when_a_replica_is_killed(cluster: Cluster, fakes):
    """Last in this module: it leaves the cluster with one replica. A call that nginx had already
    sent on an idle connection to the killed replica, before it saw that connection close, fails
    UNAVAILABLE (HTTP 502: nginx never sends a gRPC call twice); every other call is answered."""
    victim, survivor = cluster.replicas
    victim.kill()
    failures = []
    with cluster.grpc.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def answered_in_a_row() -> bool:
            before = handled(survivor, "Check")
            for _ in range(SPREAD_CALLS):
                try:
                    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S).status == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.UNAVAILABLE, f"{err.code().name}: {err.details()}"
                    failures.append(err.details())
                    return False
            assert handled(survivor, "Check") - before == SPREAD_CALLS, "the survivor should have answered every call"
            return True

        wait_for(answered_in_a_row, f"{SPREAD_CALLS} calls in a row answered after the kill (failures: {failures})")
    prompt = f"cluster after kill {uuid.uuid4().hex[:8]}"
    events, err = generate(cluster.grpc, request(prompt, OPENAI_MODEL))
    ok(events, err, "Generate after a replica was killed")
    events, end = connect_generate(cluster.http, prompt + " connect")
    assert end == {} and "finished" in events[-1], events
    assert cluster.http.get("/readyz") == (200, "ready\n")
