"""State shared by two replicas behind nginx (PostgreSQL and Redis, tools/cluster.sh): a cached answer
written by one replica is a hit on the other; a key's requests-per-minute quota and token budget
hold across replicas; Redis stopped mid-run gives clear statuses and the cluster recovers when it
returns; a batch whose leases one replica holds is finished by the other after `kill -9`, every
result exactly once and one vendor batch (last: it leaves one replica). The keys and quota helpers
are test_quotas.py's, the batch helpers test_batches.py's; the vendor fakes' logs show what reached
the vendor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from cluster import Cluster, RemoteServer, require_cluster_tools, wait_for
from conftest import server_binary
from harness import RPC_TIMEOUT_S, assert_status
from test_batches import LOCAL_MODEL, by_custom_id, get, items, openai_batches, results, submit, wait_finished
from test_quotas import KEYS, bearer, early_in_a_minute, generate, ok, readyz, trailer, unique
from test_vendors import OPENAI_MODEL, fakes, of_kind, request, vendor_env  # noqa: F401

StatusCode = grpc.StatusCode
# A dead replica's batch work waits this long for the other (batches.lease_seconds): short, so the
# kill -9 test waits little; the lease is renewed every third of it.
LEASE_SECONDS = 3
# Local-lane items of the kill -9 test, one at a time per replica: enough to be running at the kill.
LOCAL_ITEMS = 300
VENDOR_ITEMS = 4


class KeyedServer(RemoteServer):
    """A replica or front whose every call carries `authorization: Bearer KEY` (the batch helpers of
    test_batches.py make their own channels and send no metadata)."""

    def __init__(self, server: RemoteServer, key: str):
        self.__dict__.update(server.__dict__)
        self.key = key

    def channel(self, **kwargs):
        return grpc.intercept_channel(super().channel(**kwargs), _Bearer(self.key))


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
              grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, key: str):
        self.header = ("authorization", f"Bearer {key}")

    def _details(self, details):
        return details._replace(metadata=list(details.metadata or ()) + [self.header])

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


@pytest.fixture(scope="module")
def cluster(session_dir: Path, fakes):
    require_cluster_tools()
    config = session_dir / "cluster-state.json"
    config.write_text(json.dumps({
        "auth": {"mode": "on", "keys": [dict(name=n, **k) for n, k in KEYS.items()]},
        "batches": {"lease_seconds": LEASE_SECONDS, "concurrency": 1},
    }))
    env = {**vendor_env(fakes), "PRISM_SERVER_BIN": str(server_binary())}
    running = Cluster(session_dir / "cluster-state", replicas=2, config=config, env=env).start()
    try:
        yield running
    finally:
        running.stop()


def cacheable(text: str) -> prism_pb2.GenerateRequest:
    req = request(text, OPENAI_MODEL)
    req.temperature.value = 0
    return req


def test_a_cached_answer_written_by_one_replica_is_a_hit_on_the_other(cluster: Cluster, fakes):
    one, two = cluster.replicas
    text = unique("cluster cache")
    events, err = generate(one, cacheable(text), "free")
    ok(events, err, "the miss on replica 1")
    assert not of_kind(events, "routed")[0].cache_hit
    events, err = generate(two, cacheable(text), "free")
    ok(events, err, "the same request on replica 2")
    assert of_kind(events, "routed")[0].cache_hit, "replica 2 did not find replica 1's answer"
    for _ in range(4):  # and through nginx, whichever replica answers
        events, err = generate(cluster.grpc, cacheable(text), "free")
        ok(events, err, "the same request through nginx")
        assert of_kind(events, "routed")[0].cache_hit
    assert len(fakes["openai"].requests(text)) == 1, "the vendor should have answered once"


def test_a_requests_per_minute_quota_holds_across_replicas(cluster: Cluster):
    early_in_a_minute()
    one, two = cluster.replicas
    allowed = KEYS["rpm"]["requests_per_minute"]
    for i in range(allowed):
        with (one, two)[i % 2].channel() as channel:
            prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), metadata=bearer("rpm"), timeout=RPC_TIMEOUT_S)
    refused = []
    for server in (one, two, cluster.grpc):
        with server.channel() as channel:
            try:
                prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), metadata=bearer("rpm"), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as err:
                refused.append(err)
                continue
        raise AssertionError(f"{server.name} admitted call {allowed + 1} of a key allowed {allowed} a minute")
    for err in refused:
        assert_status(err, StatusCode.RESOURCE_EXHAUSTED, "a call over the key's requests_per_minute")
        assert "requests_per_minute" in err.details(), err.details()
        assert 0 < int(trailer(err, "retry-after-ms")) <= 60_000, err.trailing_metadata()


def test_a_token_budget_spent_on_one_replica_holds_on_the_other(cluster: Cluster):
    early_in_a_minute()
    one, two = cluster.replicas
    events, err = generate(one, request(unique("cluster tokens"), OPENAI_MODEL), "tokens")
    ok(events, err, "the first call of the token budget, on replica 1")
    spent = of_kind(events, "usage")[-1]
    assert spent.input_tokens + spent.output_tokens >= KEYS["tokens"]["tokens_per_minute"], spent
    for server in (two, cluster.grpc):
        _, err = generate(server, request(unique("cluster tokens again"), OPENAI_MODEL), "tokens")
        assert err is not None, f"{server.name} admitted a key whose tokens_per_minute replica 1 spent"
        assert_status(err, StatusCode.RESOURCE_EXHAUSTED, f"a call on {server.name} after the budget was spent")
        assert "tokens_per_minute" in err.details(), err.details()


def test_usage_from_every_replica_lands_in_one_database(cluster: Cluster):
    """`prism usage` with PRISM_DATABASE_URL sums what both replicas recorded for a key."""
    def usage() -> dict:
        prism = server_binary().parent / "prism"
        env = dict(os.environ, PRISM_DATABASE_URL=cluster.state["DATABASE_URL"])
        done = subprocess.run([str(prism), "usage", "--json", "--key", "free"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        rows = [r for r in json.loads(done.stdout) if r["model"] == OPENAI_MODEL]
        return dict(requests=sum(r["requests"] for r in rows), output_tokens=sum(r["output_tokens"] for r in rows))

    before = usage()
    spent = []
    for server in cluster.replicas:
        events, err = generate(server, request(unique(f"usage on {server.name}"), OPENAI_MODEL), "free")
        ok(events, err, f"a call to count on {server.name}")
        spent.append(of_kind(events, "usage")[-1])
    after = usage()
    assert after["requests"] - before["requests"] == 2, (before, after)
    assert after["output_tokens"] - before["output_tokens"] == sum(u.output_tokens for u in spent) > 0, (before, after, spent)


def test_redis_stopped_mid_run_then_back(cluster: Cluster):
    redis_address = cluster.state["REDIS_URL"].removeprefix("redis://")
    cluster.redis_stop()
    try:
        for replica in cluster.replicas:
            status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(readyz(replica)),
                                    f"{replica.name}'s /readyz reporting the outage")
            assert "Redis" in body and redis_address in body, body
        assert readyz(cluster.http)[0] == 503, "nginx's /readyz should say no replica is ready"
        # A key with quotas cannot be counted: UNAVAILABLE naming Redis, on every replica.
        for server in (*cluster.replicas, cluster.grpc):
            _, err = generate(server, request(unique("needs redis"), OPENAI_MODEL), "limited")
            assert err is not None, f"{server.name} served a key with quotas while Redis was down"
            assert_status(err, StatusCode.UNAVAILABLE, f"a quota check on {server.name} with Redis down")
            assert "Redis" in err.details(), err.details()
        # A key without quotas does not need Redis: the cache is bypassed and the answer comes.
        events, err = generate(cluster.grpc, cacheable(unique("cache bypassed")), "free")
        ok(events, err, "a call of a key without quotas with Redis down")
    finally:
        cluster.redis_start()
    for replica in cluster.replicas:
        wait_for(lambda: readyz(replica) == (200, "ready\n"), f"{replica.name} ready again after Redis returned")
    for server in (*cluster.replicas, cluster.grpc):
        events, err = generate(server, request(unique("redis is back"), OPENAI_MODEL), "limited")
        ok(events, err, f"a key with quotas on {server.name} after Redis returned")
    text = unique("cached again")
    for hit in (False, True):
        events, err = generate(cluster.replicas[int(hit)], cacheable(text), "free")
        ok(events, err, "the cache after Redis returned")
        assert of_kind(events, "routed")[0].cache_hit == hit


def lease_owners(cluster: Cluster, table: str, batch_id: str) -> set[str]:
    sql = f"SELECT DISTINCT lease_owner FROM {table} WHERE batch_id = '{batch_id}' AND lease_owner IS NOT NULL"
    done = subprocess.run(["psql", cluster.state["DATABASE_URL"], "-tAc", sql], capture_output=True, text=True, check=True)
    return {line for line in done.stdout.split() if line}


def test_a_batch_is_finished_by_the_survivor_after_kill_9_of_the_replica_holding_its_leases(cluster: Cluster, fakes):
    """Last in this module: it leaves one replica. The other replica is paused (SIGSTOP) while
    the first takes the batches, so every lease is the first's when it is killed."""
    holder, survivor = (KeyedServer(r, KEYS["free"]["key"]) for r in cluster.replicas)
    prefix = f"cluster-k9-{uuid.uuid4().hex[:6]}"
    os.kill(survivor.pid, signal.SIGSTOP)
    try:
        vendor = submit(holder, items(prefix + "-v", OPENAI_MODEL, VENDOR_ITEMS))
        local = submit(holder, items(prefix + "-l", LOCAL_MODEL, LOCAL_ITEMS))
        # The vendor batch was created and its id recorded; local items are running under a lease.
        wait_for(lambda: get(holder, vendor.id).vendor_batch_ids, "the vendor batch id recorded")
        wait_for(lambda: get(holder, local.id).succeeded > 0, "a local item finished")
        owners = wait_for(lambda: lease_owners(cluster, "batch_items", local.id) | lease_owners(cluster, "batch_chunks", vendor.id),
                          "a lease on the batches' work (an item between two others holds none)", interval=0.01)
        assert all(f"-{holder.pid}-" in o for o in owners), f"leases not all the holder's (pid {holder.pid}): {owners}"
        running = get(holder, local.id)
        assert running.state == prism_pb2.BATCH_STATE_RUNNING, f"the local batch finished before the kill: {running}"
        holder.kill()
    finally:
        os.kill(survivor.pid, signal.SIGCONT)
    # Asked of the survivor itself: through nginx, a call could still meet a connection to the
    # dead replica (test_cluster.py shows what that costs).
    for batch, part, n in ((vendor, "v", VENDOR_ITEMS), (local, "l", LOCAL_ITEMS)):
        done = wait_finished(survivor, batch.id, deadline_s=180)
        assert done.state == prism_pb2.BATCH_STATE_DONE and done.succeeded == n, done
        got = by_custom_id(results(survivor, batch.id), [f"{prefix}-{part}-{i}" for i in range(n)])
        assert all(r.WhichOneof("result") == "text" for r in got.values()), [r for r in got.values() if r.WhichOneof("result") != "text"][:2]
    assert len(openai_batches(fakes, vendor.id)) == 1, "the items were sent to the vendor more than once"
