"""Connection-level limits: the idle timeout closes a connection with no streams (after a GOAWAY),
and the connection limit closes connections beyond it at accept while the ones inside keep working.
Keepalive: a quiet connection gets a PING every `limits.keepalive_interval_seconds`; a peer that
answers stays open, one that sends nothing for KEEPALIVE_TIMEOUT after a PING gets a GOAWAY and is
closed."""

from __future__ import annotations

import json
import time

import pytest

import h2raw

from harness import assert_serving

# `limits.keepalive_timeout_seconds` of the keepalive server (the default is 20 s). The server checks
# once a second, so it closes a silent peer between 3 and 4 s after its PING.
KEEPALIVE_TIMEOUT = 3.0


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


@pytest.fixture(scope="module")
def keepalive_server(servers, tmp_path_factory):
    server = _server_with(servers, tmp_path_factory, "keepalive", {"keepalive_interval_seconds": 1,
                                                                "keepalive_timeout_seconds": int(KEEPALIVE_TIMEOUT)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keepalive_idle_server(servers, tmp_path_factory):
    server = _server_with(servers, tmp_path_factory, "keepalive-idle",
                          {"keepalive_interval_seconds": 1, "idle_timeout_seconds": 3})
    yield server
    server.stop()


def _empty_call(conn: h2raw.Connection, stream_id: int) -> None:
    headers = h2raw.grpc_request_headers("/grpc.testing.TestService/EmptyCall")
    conn.request(stream_id, headers, h2raw.grpc_message(b""))
    stream = conn.response(stream_id)
    assert stream.grpc_status == 0, f"EmptyCall on stream {stream_id} failed; {conn.summary()}"


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


def test_quiet_connection_gets_keepalive_pings_and_acks_keep_it_open(keepalive_server):
    with keepalive_server.raw() as conn:
        conn.handshake()
        conn.read_until(lambda: len(conn.pings) >= 1, 5.0, "keepalive PING from the server")
        ping = next(f for f in conn.frames if f.type == h2raw.PING and not f.flags & h2raw.ACK)
        assert ping.stream_id == 0 and len(ping.payload) == 8, ping
        # h2raw ACKs it; the server sends its next PING only once the last one was answered.
        conn.read_until(lambda: len(conn.pings) >= 2, 5.0, "second keepalive PING after our ACK")
        assert conn.goaway is None, f"GOAWAY on a connection that answers PINGs; {conn.summary()}"
        _empty_call(conn, 1)
        conn.read_until(lambda: len(conn.pings) >= 3, 5.0, "keepalive PING after the call")
        _empty_call(conn, 3)


def test_a_peer_that_never_acks_is_closed_with_goaway(keepalive_server):
    silent, answering = keepalive_server.raw(), keepalive_server.raw()
    try:
        silent.ack_pings = False
        silent.handshake()
        answering.handshake()
        silent.read_until(lambda: silent.pings, 5.0, "keepalive PING from the server")
        # Read both until the silent one is closed; the answering one ACKs its PINGs meanwhile.
        deadline = time.monotonic() + KEEPALIVE_TIMEOUT + 10
        while not silent.closed and time.monotonic() < deadline:
            silent.wait_closed(0.25)
            answering.drain(quiet=0.25, limit=0.25)
        assert silent.closed, f"a peer that never ACKed a PING was still open; {silent.summary()}"
        assert silent.goaway is not None, f"closed without a GOAWAY; {silent.summary()}"
        assert silent.goaway[:2] == (0, h2raw.NO_ERROR), f"GOAWAY (last stream, code) {silent.goaway[:2]}"
        assert len(silent.pings) == 1, f"the server PINGed again before the first was answered; {silent.summary()}"
        assert not answering.closed and answering.goaway is None, \
            f"the connection that ACKs was closed too; {answering.summary()}"
        assert len(answering.pings) > 1, f"no PING came after the first ACK; {answering.summary()}"
        _empty_call(answering, 1)
    finally:
        silent.close()
        answering.close()


def test_keepalive_acks_do_not_hold_off_the_idle_timeout(keepalive_idle_server):
    # PINGs every ~2 s, each ACKed: the connection is still idle (no streams) and is closed at 3 s.
    with keepalive_idle_server.raw() as conn:
        conn.handshake()
        assert conn.wait_closed(timeout=10.0), f"an idle connection answering PINGs stayed open; {conn.summary()}"
        assert conn.pings, f"no keepalive PING before the idle close, so nothing was tested; {conn.summary()}"
        assert conn.goaway is not None, f"closed without a GOAWAY; {conn.summary()}"
