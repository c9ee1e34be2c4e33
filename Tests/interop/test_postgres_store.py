"""prism-server on PostgreSQL (PRISM_DATABASE_URL) from the Python grpcio client: a batch runs to
completion through the OpenAI fake and the local engine with its rows in PostgreSQL, IndexDocument
and Query work on the shared index; with PostgreSQL stopped, SubmitBatch is UNAVAILABLE naming the
reason, Generate still answers and /readyz is not ready; started again, everything recovers. A
replica killed with -9 mid-batch loses its work to another once its leases expire; two live
replicas share a batch, one streaming what both ran; a replica started before PostgreSQL migrates
once it is up. PostgreSQL is a throwaway server (tools/services.sh) on a free port; skipped only
where it is not installed and not in CI."""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2

from conftest import ServerPool
from harness import RPC_TIMEOUT_S
from test_batch_crashes import check_after_crashes
from test_batches import FINISH_DEADLINE_S, LOCAL_MODEL, by_custom_id, get, items, openai_batches, results, stub, submit, wait_finished
from test_index import retrieve, unique_index, upload
from test_quotas import readyz
from test_quotas import poll
from test_vendors import OPENAI_MODEL, fakes, request, vendor_env  # noqa: F401

SERVICES = Path(__file__).resolve().parents[2] / "tools" / "services.sh"
# How long PostgreSQL's start or the gateway's reconnection may take on a busy 2-core machine.
RECOVERY_DEADLINE_S = 60.0
# Items of the batch whose replica is killed: enough that it is still running when the kill comes
# even if this test process is starved for seconds on a loaded machine (items take milliseconds).
KILLED_BATCH_ITEMS = 1500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL server in `folder` on `port`, started, stopped and restarted by tools/services.sh."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.url = ""

    def start(self) -> "Postgres":
        out = subprocess.run([str(SERVICES), "postgres", "start", str(self.folder), str(self.port)],
                             capture_output=True, text=True, check=True)
        self.url = out.stdout.strip().splitlines()[-1]
        return self

    def stop(self) -> None:
        subprocess.run([str(SERVICES), "postgres", "stop", str(self.folder)], check=True, capture_output=True)

    def destroy(self) -> None:
        subprocess.run([str(SERVICES), "postgres", "destroy", str(self.folder)], check=False, capture_output=True)

    def scalar(self, sql: str) -> str:
        return subprocess.run(["psql", self.url, "-tAc", sql], capture_output=True, text=True, check=True).stdout.strip()


def wait_for(condition, what: str, deadline_s: float = RECOVERY_DEADLINE_S):
    return poll(condition, what, deadline_s)


@pytest.fixture(scope="module")
def postgres(session_dir: Path):
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed, and CI must run this test (tools/setup.sh installs it)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = Postgres(session_dir / f"postgres-{uuid.uuid4().hex[:6]}", free_port()).start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def shared_server(servers: ServerPool, fakes, postgres):  # noqa: F811
    env = dict(vendor_env(fakes), PRISM_DATABASE_URL=postgres.url)
    server = servers.start("postgres-store", [], "h2c", env=env)
    try:
        yield server
    finally:
        server.stop()


def test_a_batch_and_the_index_live_in_postgresql(shared_server, postgres, fakes):  # noqa: F811
    prefix = f"pg-{uuid.uuid4().hex[:6]}"
    vendor = submit(shared_server, items(prefix + "-v", OPENAI_MODEL, 3))
    local = submit(shared_server, items(prefix + "-l", LOCAL_MODEL, 5))
    for batch, model, n in ((vendor, "v", 3), (local, "l", 5)):
        done = wait_finished(shared_server, batch.id)
        assert done.state == prism_pb2.BATCH_STATE_DONE and done.succeeded == n, done
        by_custom_id(results(shared_server, batch.id), [f"{prefix}-{model}-{i}" for i in range(n)])
    assert len(openai_batches(fakes, vendor.id)) == 1, "the vendor batch was not sent exactly once"
    # The rows are PostgreSQL's, not the data folder's SQLite file.
    assert postgres.scalar(f"SELECT count(*) FROM batch_items WHERE batch_id IN ('{vendor.id}', '{local.id}')") == "8"

    index = unique_index("shared")
    text = "# Orchard\n\nThe quince tree flowers in May.\n\n# Field\n\nBarley grows in rows.\n"
    reply = upload(shared_server, index, text.encode(), mime="text/markdown", document_id="farm")
    assert reply.chunks >= 2
    hits = retrieve(shared_server, index, "quince")
    assert hits.text[0].heading == "Orchard" and "quince" in hits.text[0].text
    assert postgres.scalar(f"SELECT count(*) FROM index_documents WHERE index_name = '{index}'") == "1"
    assert readyz(shared_server)[0] == 200


def test_postgresql_stopped_is_unavailable_for_what_needs_it_and_recovers(shared_server, postgres):
    postgres.stop()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            submit(shared_server, items(f"down-{uuid.uuid4().hex[:6]}", LOCAL_MODEL, 2))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
        assert "PostgreSQL" in caught.value.details() and str(postgres.port) in caught.value.details(), caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            retrieve(shared_server, unique_index("down"), "quince")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
        # What does not need PostgreSQL keeps working.
        events = list(stub(shared_server).Generate(request("still here?", LOCAL_MODEL), timeout=RPC_TIMEOUT_S))
        assert events, "Generate answered nothing"
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(readyz(shared_server)), "/readyz not ready")
        assert "PostgreSQL" in body, body
    finally:
        postgres.start()
    wait_for(lambda: readyz(shared_server)[0] == 200, "/readyz ready again after PostgreSQL returned")
    prefix = f"back-{uuid.uuid4().hex[:6]}"
    batch = submit(shared_server, items(prefix, LOCAL_MODEL, 3))
    done = wait_finished(shared_server, batch.id)
    assert done.succeeded == 3, done
    by_custom_id(results(shared_server, batch.id), [f"{prefix}-{i}" for i in range(3)])


def test_a_replica_killed_with_9_loses_its_work_to_another_that_finishes_it(servers: ServerPool, fakes, postgres, session_dir: Path):  # noqa: F811
    """Replica A takes the work and is killed with -9 while items run; replica B, on the same
    database, takes the work over once A's leases expire (batches.lease_seconds 2) and finishes it:
    every result exactly once, the vendor batch sent at most once."""
    config = session_dir / "postgres-replicas.json"
    config.write_text(json.dumps({"batches": {"concurrency": 1, "lease_seconds": 2}}))
    env = dict(vendor_env(fakes), PRISM_DATABASE_URL=postgres.url)
    prefix = f"k9pg-{uuid.uuid4().hex[:6]}"
    a = servers.start("postgres-replica-a", ["--config", str(config)], "h2c", env=env)
    try:
        vendor = submit(a, items(prefix + "-v", OPENAI_MODEL, 4))
        local = submit(a, items(prefix + "-l", LOCAL_MODEL, KILLED_BATCH_ITEMS))
        wait_for(lambda: get(a, local.id).succeeded > 0, "a local item run by replica A", FINISH_DEADLINE_S)
        running = get(a, local.id)
    finally:
        a.kill()
    assert running.state == prism_pb2.BATCH_STATE_RUNNING, f"the batch had finished before the kill: {running}"
    b = servers.start("postgres-replica-b", ["--config", str(config)], "h2c", env=env)
    try:
        check_after_crashes(b, fakes, {vendor.id: [f"{prefix}-v-{i}" for i in range(4)],
                                       local.id: [f"{prefix}-l-{i}" for i in range(KILLED_BATCH_ITEMS)]}, {vendor.id})
        owners = postgres.scalar(f"SELECT count(DISTINCT lease_owner) FROM batch_items WHERE batch_id = '{local.id}' AND lease_owner IS NOT NULL")
        assert owners == "0", f"finished items still hold leases: {owners}"
    finally:
        b.stop()


def test_a_replica_started_before_postgresql_serves_and_migrates_once_it_can(servers: ServerPool, session_dir: Path):
    """PostgreSQL not up yet at the replica's start: it serves what does not need the database,
    answers the rest UNAVAILABLE and is not ready; once PostgreSQL is up, it migrates and serves all."""
    later = Postgres(session_dir / f"postgres-late-{uuid.uuid4().hex[:6]}", free_port())
    server = servers.start("postgres-late", [], "h2c", env={"PRISM_DATABASE_URL": f"postgres://prism@127.0.0.1:{later.port}/prism"})
    try:
        status, body = readyz(server)
        assert status == 503 and "not migrated yet" in body and "unreachable" in body, (status, body)
        with pytest.raises(grpc.RpcError) as caught:
            submit(server, items(f"early-{uuid.uuid4().hex[:6]}", LOCAL_MODEL, 1))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "PostgreSQL" in caught.value.details(), caught.value
        assert list(stub(server).Generate(request("no database needed", LOCAL_MODEL), timeout=RPC_TIMEOUT_S))
        later.start()
        wait_for(lambda: readyz(server)[0] == 200, "/readyz ready once PostgreSQL is up")
        batch = submit(server, items(f"late-{uuid.uuid4().hex[:6]}", LOCAL_MODEL, 2))
        assert wait_finished(server, batch.id).succeeded == 2
    finally:
        server.stop()
        later.destroy()


def test_two_live_replicas_share_a_batch_and_either_streams_its_results(servers: ServerPool, fakes, postgres):  # noqa: F811
    """Submitted to replica A, run by both schedulers (claims never overlap), streamed from replica B:
    every result exactly once, and B's GetBatch agrees with A's."""
    env = dict(vendor_env(fakes), PRISM_DATABASE_URL=postgres.url)
    a = servers.start("postgres-live-a", [], "h2c", env=env)
    b = servers.start("postgres-live-b", [], "h2c", env=env)
    try:
        prefix = f"two-{uuid.uuid4().hex[:6]}"
        batch = submit(a, items(prefix, LOCAL_MODEL, 200))
        by_custom_id(results(b, batch.id), [f"{prefix}-{i}" for i in range(200)])
        assert get(b, batch.id).succeeded == get(a, batch.id).succeeded == 200
    finally:
        a.stop()
        b.stop()
