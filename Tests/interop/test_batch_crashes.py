"""Batches through crashes and at size, against the real prism-server, the OpenAI plugin and fake,
and the local engine: kill -9 right after SubmitBatch returns and again while items run, restarted
on the same PRISM_DATA_DIR; a bounded loop of kill -9 at random moments (seeded, PRISM_CRASH_SEED
repeats one); after each, every result exactly once and at most one vendor batch per batch. And a
10,000-item submit, cancelled and streamed (its time and the store's size are printed: run with -s)."""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2

from conftest import ServerPool
from harness import RPC_TIMEOUT_S
from test_batches import (FINISH_DEADLINE_S, LOCAL_MODEL, by_custom_id, get, items, openai_batches, results, start, stub,
                          submit, wait_finished)
from test_vendors import OPENAI_MODEL, fakes  # noqa: F401

# --- crashes --------------------------------------------------------------------------------------

# kill -9 rounds of the crash loop (PRISM_CRASH_ROUNDS for a longer run), each at a random moment
# (seeded: PRISM_CRASH_SEED repeats a run).
CRASH_ROUNDS = int(os.environ.get("PRISM_CRASH_ROUNDS", 12))
CRASH_AT_MOST_S = 1.2


def check_after_crashes(server, fakes, expected: dict[str, list[str]], vendor: set[str]) -> dict[str, int]:
    """Every batch finishes with each custom_id answered exactly once; a vendor batch reached the
    vendor at most once, and exactly once unless its submit was cut by a kill (then its items say
    so, ABORTED, and were not sent again). Returns counts for the report."""
    seen = {"items": 0, "abandoned_items": 0, "vendor_batches": 0}
    for batch_id, custom_ids in expected.items():
        done = wait_finished(server, batch_id, deadline_s=180)
        got = by_custom_id(results(server, batch_id), custom_ids)
        assert done.succeeded + done.failed + done.cancelled == len(custom_ids), done
        seen["items"] += len(custom_ids)
        if batch_id not in vendor:
            assert done.succeeded == len(custom_ids), (done, [r for r in got.values() if r.WhichOneof("result") != "text"][:2])
            continue
        created = openai_batches(fakes, batch_id)
        assert len(created) <= 1, f"batch {batch_id} reached the vendor {len(created)} times"
        seen["vendor_batches"] += len(created)
        aborted = [r for r in got.values() if r.WhichOneof("result") == "error"]
        if aborted:
            assert all(r.error.code == grpc.StatusCode.ABORTED.value[0] and "not sent again" in r.error.message for r in aborted), aborted[:2]
            seen["abandoned_items"] += len(aborted)
        else:
            assert len(created) == 1 and done.succeeded == len(custom_ids), (done, created)
    return seen


def test_kill_9_after_submit_and_while_items_run_loses_and_repeats_nothing(servers: ServerPool, fakes, session_dir: Path):
    name, prefix = "batches-crash", f"k9-{uuid.uuid4().hex[:6]}"
    server = start(servers, fakes, name, session_dir, batches={"concurrency": 1})
    try:
        vendor = submit(server, items(prefix + "-v", OPENAI_MODEL, 5))
        local = submit(server, items(prefix + "-l", LOCAL_MODEL, 400))
        server.kill()  # right after SubmitBatch returned: both batches were accepted
        server = start(servers, fakes, name, session_dir, batches={"concurrency": 1})
        deadline = time.monotonic() + FINISH_DEADLINE_S
        while get(server, local.id).succeeded == 0:
            assert time.monotonic() < deadline, "no local item ran after the restart"
            time.sleep(0.02)
        running = get(server, local.id)
        server.kill()  # while items run
        assert running.state == prism_pb2.BATCH_STATE_RUNNING, f"the local batch had finished before the kill: {running}"
        server = start(servers, fakes, name, session_dir, batches={"concurrency": 1})
        check_after_crashes(server, fakes, {vendor.id: [f"{prefix}-v-{i}" for i in range(5)],
                                            local.id: [f"{prefix}-l-{i}" for i in range(400)]}, {vendor.id})
    finally:
        server.stop()


def test_crash_loop_of_kill_9_at_random_moments(servers: ServerPool, fakes, session_dir: Path):
    seed = int(os.environ.get("PRISM_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    name, prefix = "batches-crash-loop", f"loop-{uuid.uuid4().hex[:6]}"
    config = {"concurrency": 2}
    expected: dict[str, list[str]] = {}
    vendor: set[str] = set()
    server = start(servers, fakes, name, session_dir, batches=config)
    try:
        for round_ in range(CRASH_ROUNDS):
            if round_ % 3 == 0:
                v = submit(server, items(f"{prefix}-{round_}-v", OPENAI_MODEL, 4))
                expected[v.id] = [f"{prefix}-{round_}-v-{i}" for i in range(4)]
                vendor.add(v.id)
                l = submit(server, items(f"{prefix}-{round_}-l", LOCAL_MODEL, 80))
                expected[l.id] = [f"{prefix}-{round_}-l-{i}" for i in range(80)]
            time.sleep(rng.uniform(0, CRASH_AT_MOST_S))  # the random moment is the point of the test
            server.kill()
            server = start(servers, fakes, name, session_dir, batches=config)
        seen = check_after_crashes(server, fakes, expected, vendor)
        print(f"\ncrash loop (seed {seed}): {CRASH_ROUNDS} kill -9 rounds, {len(expected)} batches, {seen['items']} items each "
              f"answered exactly once; {seen['vendor_batches']} vendor batches for {len(vendor)} batches sent to the vendor; "
              f"{seen['abandoned_items']} items failed ABORTED (submit cut by a kill)")
    finally:
        server.stop()


# --- size -----------------------------------------------------------------------------------------


def test_a_10000_item_batch_is_accepted_cancelled_and_streamed_once(servers: ServerPool, fakes, session_dir: Path):
    server = start(servers, fakes, "batches-big", session_dir, batches={"concurrency": 1})
    try:
        measure_10000(server)
    finally:
        server.stop()


def measure_10000(slow_server):
    n, prefix = 10_000, f"big-{uuid.uuid4().hex[:6]}"
    batch_items = items(prefix, LOCAL_MODEL, n)
    data_dir = slow_server.workdir / f"{slow_server.name}-data"
    size_before = sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file())
    started = time.monotonic()
    batch = submit(slow_server, batch_items)
    submit_s = time.monotonic() - started
    size_after = sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file())
    assert batch.total == n, batch
    started = time.monotonic()
    cancelled = stub(slow_server).CancelBatch(prism_pb2.GetBatchRequest(id=batch.id), timeout=RPC_TIMEOUT_S)
    cancel_s = time.monotonic() - started
    started = time.monotonic()
    got = results(slow_server, batch.id)
    stream_s = time.monotonic() - started
    by_custom_id(got, [f"{prefix}-{i}" for i in range(n)])
    done = wait_finished(slow_server, batch.id)
    assert done.state == prism_pb2.BATCH_STATE_CANCELLED and done.succeeded + done.cancelled == n, done
    print(f"\n10,000-item batch: SubmitBatch {submit_s:.2f} s ({len(prism_pb2.SubmitBatchRequest(items=batch_items).SerializeToString())} "
          f"request bytes); store grew {(size_after - size_before) / 1e6:.1f} MB; CancelBatch of {cancelled.cancelled} pending items "
          f"{cancel_s:.2f} s; {n} results streamed in {stream_s:.2f} s")


def test_kill_9_while_the_vendor_creates_the_batch_fails_its_items_instead_of_sending_them_twice(servers: ServerPool, fakes, session_dir: Path):
    """The fake stores the vendor batch, then holds its answer ("slow-create"): the server dies
    never knowing the id. After the restart the items fail ABORTED naming the vendor batch to look
    for, and no second vendor batch is made."""
    name, prefix = "batches-crash-create", f"cc-{uuid.uuid4().hex[:6]}"
    server = start(servers, fakes, name, session_dir)
    try:
        batch = submit(server, items(prefix, OPENAI_MODEL, 3), label="slow-create")
        deadline = time.monotonic() + FINISH_DEADLINE_S
        while not openai_batches(fakes, batch.id):
            assert time.monotonic() < deadline, "the vendor batch was never created"
            time.sleep(0.02)
        server.kill()
        server = start(servers, fakes, name, session_dir)
        done = wait_finished(server, batch.id)
        assert done.state == prism_pb2.BATCH_STATE_FAILED and done.failed == 3 and not done.vendor_batch_ids, done
        got = by_custom_id(results(server, batch.id), [f"{prefix}-{i}" for i in range(3)])
        for result in got.values():
            assert result.error.code == grpc.StatusCode.ABORTED.value[0], result
            assert f"prism {batch.id} chunk " in result.error.message and "slow-create" in result.error.message, result.error.message
        assert len(openai_batches(fakes, batch.id)) == 1, "the items were sent to the vendor again"
    finally:
        server.stop()


@pytest.mark.parametrize("hook,state,code", [("fail-batch", prism_pb2.BATCH_STATE_FAILED, grpc.StatusCode.FAILED_PRECONDITION),
                                             ("expire-batch", prism_pb2.BATCH_STATE_FAILED, grpc.StatusCode.DEADLINE_EXCEEDED)])
def test_a_failed_or_expired_vendor_batch_fails_its_items(servers: ServerPool, fakes, session_dir: Path, hook, state, code):
    server = start(servers, fakes, f"batches-{hook}", session_dir)
    try:
        prefix = f"{hook}-{uuid.uuid4().hex[:6]}"
        batch = submit(server, items(prefix, OPENAI_MODEL, 2), label=hook)
        got = by_custom_id(results(server, batch.id), [f"{prefix}-{i}" for i in range(2)])
        assert all(r.WhichOneof("result") == "error" and r.error.code == code.value[0] for r in got.values()), got
        done = get(server, batch.id)
        assert done.state == state and done.failed == 2 and len(done.vendor_batch_ids) == 1, done
    finally:
        server.stop()
