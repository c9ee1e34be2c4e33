"""A reader that stops reading must not make the server buffer without bound: a call streaming
1 GiB to a client whose HTTP/2 window is closed may cost the server only its per-stream cap
(1 MiB by default) plus the window, measured as the server's resident memory."""

from __future__ import annotations

import time

import h2raw
from grpc.testing import messages_pb2
from harness import assert_serving

STREAM_PATH = "/grpc.testing.TestService/StreamingOutputCall"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc status")


def test_stalled_reader_does_not_grow_server_memory(interop_server):
    # 1,024 responses of 1 MiB each; the client grants a 64 KiB window and never reads more.
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=1 << 20)] * 1024).SerializeToString()
    pid = interop_server.proc.pid
    before = rss_kib(pid)
    with interop_server.raw() as conn:
        conn.handshake({h2raw.SETTINGS_INITIAL_WINDOW_SIZE: 65535})
        conn.request(1, h2raw.grpc_request_headers(STREAM_PATH), body=h2raw.grpc_message(request))
        time.sleep(3.0)  # ample time for an unbounded server to queue hundreds of MiB
        grown_mib = (rss_kib(pid) - before) / 1024
        assert grown_mib < 64, (f"server memory grew by {grown_mib:.0f} MiB while a reader was stalled; "
                                f"it should hold at most the per-stream cap")
    assert_serving(interop_server, "after a stalled reader went away")
