"""A small HTTP/1.1 and gRPC-Web client for the tests of the gRPC port's HTTP/1.1 side: connections with
http.client (plaintext, or TLS offering ALPN http/1.1 only), raw sockets for malformed input, and
gRPC-Web framing (binary and base64 text, trailers as the 0x80 frame) parsed strictly."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import struct
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest

TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def plain_server(servers):
    """The --interop server on plaintext, for tests whose point is not the transport (import it)."""
    return servers.get("interop", "h2c")


def connect(server) -> http.client.HTTPConnection:
    """An HTTP/1.1 connection to `server`: over TLS it offers ALPN http/1.1 alone and checks the
    server chose it."""
    if not server.tls:
        return http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    ctx = ssl.create_default_context(cafile=str(server.ca_cert))
    ctx.set_alpn_protocols(["http/1.1"])
    conn = http.client.HTTPSConnection("localhost", server.port, context=ctx, timeout=TIMEOUT_S)
    conn.connect()
    assert conn.sock.selected_alpn_protocol() == "http/1.1", conn.sock.selected_alpn_protocol()
    return conn


def raw_exchange(server, data: bytes) -> bytes:
    """Sends `data` on a fresh plaintext socket and returns everything read until the server closes."""
    with socket.create_connection((server.host, server.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def frame(payload: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(payload)) + payload


@dataclass
class WebResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    had_trailers_frame: bool = False

    @property
    def grpc_status(self) -> int | None:
        """From the trailers frame, or from the headers of a trailers-only response."""
        value = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return None if value is None else int(value)

    @property
    def grpc_message(self) -> str:
        return unquote(self.trailers.get("grpc-message", self.headers.get("grpc-message", "")))


def parse_web_body(body: bytes, text: bool) -> tuple[list[bytes], dict[str, str], bool]:
    """Splits a gRPC-Web response body into messages and the trailers frame; asserts the framing is
    exact (nothing after the trailers frame, no cut frame, no compressed flag)."""
    if text:
        # Each flush is its own padded base64 chunk: decode group by group.
        raw = b""
        chunk = b""
        for i in range(0, len(body), 4):
            group = body[i:i + 4]
            chunk += group
            if group.endswith(b"="):
                raw += base64.b64decode(chunk, validate=True)
                chunk = b""
        raw += base64.b64decode(chunk, validate=True)
        body = raw
    messages, trailers, seen = [], {}, False
    i = 0
    while i < len(body):
        assert not seen, f"bytes after the trailers frame: {body[i:]!r}"
        assert len(body) - i >= 5, f"cut frame prefix: {body[i:]!r}"
        flag, length = struct.unpack(">BI", body[i:i + 5])
        payload = body[i + 5:i + 5 + length]
        assert len(payload) == length, f"frame of {length} bytes cut at {len(payload)}"
        i += 5 + length
        if flag == 0x80:
            seen = True
            text_block = payload.decode("ascii")
            assert text_block == "" or text_block.endswith("\r\n"), repr(text_block)
            for line in text_block.split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    assert name == name.lower(), f"trailer names are lower-case: {name!r}"
                    trailers[name] = value.strip()
        else:
            assert flag == 0, f"unexpected frame flag {flag:#x}"
            messages.append(payload)
    return messages, trailers, seen


def web_call(conn: http.client.HTTPConnection, path: str, message: bytes, *, text: bool = False,
             content_type: str | None = None, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> WebResponse:
    """One gRPC-Web call on `conn` (kept open for the next)."""
    if body is None:
        body = frame(message)
        if text:
            body = base64.b64encode(body)
    if content_type is None:
        content_type = "application/grpc-web-text" if text else "application/grpc-web+proto"
    sent = {"content-type": content_type, "x-grpc-web": "1", "x-user-agent": "grpc-web-javascript/0.1"}
    sent.update(headers or {})
    conn.request("POST", path, body=body, headers=sent)
    response = conn.getresponse()
    raw = response.read()
    got = {k.lower(): v for k, v in response.getheaders()}
    result = WebResponse(response.status, got, raw)
    if response.status == 200 and raw:
        result.messages, result.trailers, result.had_trailers_frame = parse_web_body(raw, got["content-type"].startswith("application/grpc-web-text"))
    return result
