"""Connection-level limits: the idle timeout closes a connection with no streams (after a GOAWAY),
and the connection limit closes connections beyond it at accept while the ones inside keep working."""

from __future__ import annotations

import json
import time

import pytest

import h2raw

from harness import assert_serving


def _server_with(servers, tmp_path_factory, name: str, limits: dict):
    config = tmp_path_factory.mktemp(name) / "prism.json"
    config.write_text(json.dumps({"limits": limits}))
    return servers.start(f"{name}-h2c", ["--interop", "--config", str(config)], "h2c")


@pytest.fixture(scope="module")
def idle_server(servers, tmp_path_factory):
    server = _server_with(servers, tmp_path_factory, "idle", {"idle_timeout_seconds": 1})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def limited_server(servers, tmp_path_factory):
    server = _server_with(servers, tmp_path_factory, "max-connections", {"max_connections": 3})
    yield server
    server.stop()


def test_idle_connection_is_closed_with_goaway(idle_server):
    with idle_server.raw() as conn:
        conn.handshake()
        started = time.monotonic()
        assert conn.wait_closed(timeout=6.0), f"an idle connection stayed open; {conn.summary()}"
        waited = time.monotonic() - started
        assert waited >= 0.9, f"closed after {waited:.2f} s, before the 1 s idle timeout"
        assert conn.goaway is not None, f"closed without a GOAWAY; {conn.summary()}"


def test_connections_over_the_limit_are_closed_at_accept(limited_server):
    inside = [limited_server.raw() for _ in range(3)]
    try:
        for conn in inside:
            conn.handshake()
        extra = limited_server.raw()
        try:
            assert extra.wait_closed(timeout=3.0), f"a 4th connection was served with max_connections 3; {extra.summary()}"
            assert not extra.got_server_settings, "the 4th connection got the server's SETTINGS"
        finally:
            extra.close()
        for conn in inside:  # each still answers a PING
            conn.send(h2raw.ping_frame())
            conn.read_until(lambda c=conn: c.ping_acks >= 1, 3.0, "a PING ACK on a connection within the limit")
    finally:
        for conn in inside:
            conn.close()
    time.sleep(0.5)  # the server notices the closes
    assert_serving(limited_server, "after the connection limit was reached and released")
