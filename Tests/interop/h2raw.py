"""A deliberately small HTTP/2 client for the wire-level tests: frames are built by hand with struct so
a test can send exactly the bytes it means to (malformed ones included), over plain TCP or TLS with
ALPN h2. Only the server's header blocks are decoded with a library (hpack), because their HPACK
state and Huffman coding are the server's choice, not ours."""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
               "WINDOW_UPDATE", "CONTINUATION"]
# Flags.
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Settings.
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
# Error codes.
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x7, 0x8, 0x9, 0xB

DEFAULT_MAX_FRAME = 16384
# The receive window we grant the server, on the connection and per stream: large enough that no
# test response ever waits for a WINDOW_UPDATE from us.
OUR_WINDOW = 1 << 30


# --- building frames ----------------------------------------------------------------------------


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream_id & 0x7FFFFFFF) + payload


def settings_frame(settings: dict[int, int] | None = None, ack: bool = False) -> bytes:
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def ping_frame(opaque: bytes = b"prism-00", ack: bool = False) -> bytes:
    assert len(opaque) == 8
    return frame(PING, ACK if ack else 0, 0, opaque)


def rst_stream_frame(stream_id: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def data_frame(stream_id: int, data: bytes, end_stream: bool = False) -> bytes:
    return frame(DATA, END_STREAM if end_stream else 0, stream_id, data)


def headers_frames(stream_id: int, block: bytes, end_stream: bool = False,
                   max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """HEADERS, followed by as many CONTINUATION frames as the block needs."""
    chunks = [block[i:i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        flags = END_HEADERS if i == len(chunks) - 1 else 0
        if i == 0:
            out.append(frame(HEADERS, flags | (END_STREAM if end_stream else 0), stream_id, chunk))
        else:
            out.append(frame(CONTINUATION, flags, stream_id, chunk))
    return b"".join(out)


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_string(s: bytes) -> bytes:
    return _hpack_int(len(s), 7) + s  # H bit clear: no Huffman, so sizes on the wire are exact


def encode_headers(headers: list[tuple[str, str | bytes]]) -> bytes:
    """An HPACK block of 'literal header field without indexing, new name' entries: no dynamic
    table, no Huffman, so a block means the same whatever was sent before it."""
    out = bytearray()
    for name, value in headers:
        v = value.encode() if isinstance(value, str) else value
        out += b"\x00" + _hpack_string(name.encode()) + _hpack_string(v)
    return bytes(out)


def grpc_request_headers(path: str, *, authority: str = "localhost", scheme: str = "http",
                         content_type: str = "application/grpc",
                         extra: list[tuple[str, str | bytes]] | None = None) -> list[tuple[str, str | bytes]]:
    return [(":method", "POST"), (":scheme", scheme), (":path", path), (":authority", authority),
            ("content-type", content_type), ("te", "trailers"), *(extra or [])]


def grpc_message(payload: bytes, compressed: bool = False) -> bytes:
    """One length-prefixed gRPC message: flag byte, 4-byte big-endian length, payload."""
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


def split_grpc_messages(data: bytes) -> list[tuple[bool, bytes]]:
    out, i = [], 0
    while i < len(data):
        if len(data) - i < 5:
            raise ValueError(f"truncated gRPC message prefix at byte {i} of {len(data)}")
        flag, length = struct.unpack(">BI", data[i:i + 5])
        if len(data) - i - 5 < length:
            raise ValueError(f"gRPC message at byte {i} declares {length} bytes, only {len(data) - i - 5} follow")
        out.append((flag == 1, data[i + 5:i + 5 + length]))
        i += 5 + length
    return out


# --- reading -----------------------------------------------------------------------------------


@dataclass
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes

    def __repr__(self) -> str:
        name = FRAME_NAMES[self.type] if self.type < len(FRAME_NAMES) else f"type{self.type}"
        return f"<{name} flags=0x{self.flags:x} stream={self.stream_id} len={len(self.payload)}>"


@dataclass
class Stream:
    """What the server sent on one stream."""
    id: int
    header_blocks: list[list[tuple[str, str]]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False          # END_STREAM seen from the server
    rst_code: int | None = None  # the server reset the stream

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.header_blocks[0]) if self.header_blocks else {}

    @property
    def trailers(self) -> dict[str, str]:
        """The last header block; for a trailers-only answer that is the one and only block."""
        return dict(self.header_blocks[-1]) if self.header_blocks else {}

    @property
    def grpc_status(self) -> int | None:
        value = self.trailers.get("grpc-status")
        return int(value) if value is not None else None

    def messages(self) -> list[tuple[bool, bytes]]:
        return split_grpc_messages(bytes(self.data))


class Connection:
    """One raw HTTP/2 client connection. Everything it receives is parsed as it arrives: frames are
    kept in `frames`, per-stream results in `streams`, and GOAWAY / end of connection recorded."""

    def __init__(self, host: str, port: int, *, ca_cert: Path | None = None, timeout: float = 10.0,
                 alpn: tuple[str, ...] = ("h2",)):
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls = ca_cert is not None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(ca_cert))
            ctx.set_alpn_protocols(list(alpn))
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
            self.alpn = self.sock.selected_alpn_protocol()
        else:
            self.sock = raw
            self.alpn = None
        self._buf = bytearray()
        self._decoder = hpack.Decoder()
        self._pending_block: tuple[int, int, bytearray] | None = None  # (stream, flags, block) awaiting CONTINUATION
        self.frames: list[Frame] = []
        self.streams: dict[int, Stream] = {}
        self.goaway: tuple[int, int, bytes] | None = None  # (last stream id, error code, debug data)
        self.closed = False                                 # the server closed (or reset) the connection
        self.send_error: str | None = None                  # why a send failed, if one did
        self.server_settings: dict[int, int] = {}
        self.got_server_settings = False
        self._pumping = False
        self._outbox: list[bytes] = []  # our replies (ACKs) held back while pump() is mid-frame
        self.ping_acks = 0
        self.settings_acks = 0
        self.pings: list[bytes] = []  # the opaque data of each PING (not ACK) the server sent
        self.ack_pings = True         # False plays a peer that never answers the server's PINGs

    # --- sending ---

    def send(self, data: bytes) -> None:
        """Sends `data`; if the server has closed the connection meanwhile, reads what it sent
        before closing (a GOAWAY, say) and marks the connection closed instead of raising."""
        if self.closed:
            return
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as err:
            self._send_failed(err)

    def _send_failed(self, err: BaseException) -> None:
        self.send_error = repr(err)
        self.closed = True  # first, so replies to what we read below are not attempted
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(1.0)
            while chunk := self.sock.recv(65536):
                self._feed(chunk)
        except (OSError, ssl.SSLError):
            pass

    def handshake(self, settings: dict[int, int] | None = None) -> dict[int, int]:
        """Preface, our SETTINGS (push off, big windows) and a connection WINDOW_UPDATE; then waits
        for the server's SETTINGS and its ACK of ours, and ACKs the server's."""
        ours = {SETTINGS_ENABLE_PUSH: 0, SETTINGS_INITIAL_WINDOW_SIZE: OUR_WINDOW}
        ours.update(settings or {})
        self.send(PREFACE + settings_frame(ours) + window_update_frame(0, OUR_WINDOW - 65535))
        self.read_until(lambda: self.got_server_settings and self.settings_acks >= 1, self.timeout,
                        "the server's SETTINGS and its ACK of ours")
        self.settings_acks = 0
        return self.server_settings

    def request(self, stream_id: int, headers: list[tuple[str, str | bytes]], body: bytes | None = None,
                end_stream: bool = True) -> None:
        """HEADERS (and one DATA frame with `body` if given); END_STREAM on the last frame if asked."""
        block = encode_headers(headers)
        if body is None:
            self.send(headers_frames(stream_id, block, end_stream=end_stream))
        else:
            self.send(headers_frames(stream_id, block) + data_frame(stream_id, body, end_stream=end_stream))

    def pump(self, data: bytes, timeout: float) -> None:
        """Sends `data` while reading whatever the server sends back, so a flood never deadlocks on
        full socket buffers in both directions. Stops early if the server closes the connection."""
        self.sock.setblocking(False)
        self._pumping = True
        view, sent = memoryview(data), 0
        deadline = time.monotonic() + timeout
        try:
            while sent < len(data) and not self.closed:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"sent only {sent} of {len(data)} bytes in {timeout:.0f}s and the connection is still "
                        "open: the server stopped reading without closing it")
                pending = self.tls and self.sock.pending()
                readable, writable, _ = select.select([self.sock], [self.sock], [], 0 if pending else 0.2)
                if readable or pending:
                    self._recv_nonblocking()
                if writable and not self.closed:
                    try:
                        sent += self.sock.send(view[sent:sent + 16384])
                    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as err:
                        self._send_failed(err)
        finally:
            self._pumping = False
            self.sock.setblocking(True)
            self.sock.settimeout(self.timeout)
        if self._outbox and not self.closed:
            replies, self._outbox = b"".join(self._outbox), []
            self._send_quietly(replies)

    def _recv_nonblocking(self) -> None:
        while not self.closed:
            try:
                chunk = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (ConnectionResetError, ssl.SSLError, OSError):
                self.closed = True
                return
            if not chunk:
                self.closed = True
                return
            self._feed(chunk)

    # --- receiving ---

    def _recv_blocking(self, timeout: float) -> bool:
        """Reads once, waiting up to `timeout`; False if nothing arrived in time."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            self.closed = True
            return True
        if not chunk:
            self.closed = True
            return True
        self._feed(chunk)
        return True

    def read_until(self, done, timeout: float, what: str) -> None:
        """Reads until done() is true; raises AssertionError naming `what` on timeout or if the
        connection ends first."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.closed:
                raise AssertionError(f"the server closed the connection while we waited for {what}; "
                                     f"{self.summary()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout:.1f}s; {self.summary()}")
            self._recv_blocking(min(remaining, 0.5))

    def drain(self, quiet: float = 1.0, limit: float = 10.0, until=None) -> None:
        """Reads until the connection closes, `until()` holds, nothing arrives for `quiet` seconds,
        or `limit` seconds pass."""
        deadline = time.monotonic() + limit
        while not self.closed and time.monotonic() < deadline and not (until and until()):
            if not self._recv_blocking(min(quiet, max(deadline - time.monotonic(), 0.001))):
                return

    def wait_closed(self, timeout: float) -> bool:
        """True if the server closes the connection within `timeout` (whatever it sends first)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._recv_blocking(min(0.5, deadline - time.monotonic()))
        return self.closed

    def response(self, stream_id: int, timeout: float = 10.0) -> Stream:
        """Waits until the stream ends (END_STREAM or RST_STREAM), a GOAWAY says it will never be
        processed, or the connection closes; returns what arrived on the stream."""
        deadline = time.monotonic() + timeout
        # A GOAWAY that covers this stream (last stream id >= it) still lets it finish.
        while not (self._stream_over(stream_id) or self.closed
                   or (self.goaway is not None and self.goaway[0] < stream_id)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"stream {stream_id} did not end within {timeout:.1f}s; {self.summary()}")
            self._recv_blocking(min(remaining, 0.5))
        return self.streams.get(stream_id) or Stream(stream_id)

    def _stream_over(self, stream_id: int) -> bool:
        s = self.streams.get(stream_id)
        return s is not None and (s.ended or s.rst_code is not None)

    def stream(self, stream_id: int) -> Stream:
        return self.streams.setdefault(stream_id, Stream(stream_id))

    def _feed(self, chunk: bytes) -> None:
        self._buf += chunk
        while len(self._buf) >= 9:
            length = int.from_bytes(self._buf[0:3], "big")
            if len(self._buf) < 9 + length:
                break
            ftype, flags, sid = self._buf[3], self._buf[4], int.from_bytes(self._buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self._buf[9:9 + length])
            del self._buf[:9 + length]
            self._handle(Frame(ftype, flags, sid, payload))

    def _handle(self, f: Frame) -> None:
        # Keep every frame except the bulk of a flood's answers, to keep memory and messages small.
        if not (f.type in (PING, SETTINGS) and f.flags & ACK and len(self.frames) > 200):
            self.frames.append(f)
        if f.type == SETTINGS:
            if f.flags & ACK:
                self.settings_acks += 1
            else:
                self.got_server_settings = True
                for i in range(0, len(f.payload) - 5, 6):
                    k, v = struct.unpack(">HI", f.payload[i:i + 6])
                    self.server_settings[k] = v
                self._send_quietly(settings_frame(ack=True))
        elif f.type == PING:
            if f.flags & ACK:
                self.ping_acks += 1
            else:
                self.pings.append(f.payload)
                if self.ack_pings:
                    self._send_quietly(ping_frame(f.payload, ack=True))
        elif f.type == GOAWAY:
            last, code = struct.unpack(">II", f.payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, f.payload[8:])
        elif f.type == RST_STREAM:
            self.stream(f.stream_id).rst_code = struct.unpack(">I", f.payload[:4])[0]
        elif f.type == DATA:
            body = f.payload
            if f.flags & PADDED:
                body = body[1:len(body) - body[0]]
            self.stream(f.stream_id).data += body
            if f.flags & END_STREAM:
                self.stream(f.stream_id).ended = True
        elif f.type == HEADERS:
            body = f.payload
            if f.flags & PADDED:
                body = body[1:len(body) - body[0]]
            if f.flags & PRIORITY_FLAG:
                body = body[5:]
            self._pending_block = (f.stream_id, f.flags, bytearray(body))
            if f.flags & END_HEADERS:
                self._finish_block()
        elif f.type == CONTINUATION and self._pending_block is not None:
            self._pending_block[2].extend(f.payload)
            if f.flags & END_HEADERS:
                self._finish_block()

    def _finish_block(self) -> None:
        assert self._pending_block is not None
        sid, flags, block = self._pending_block
        self._pending_block = None
        s = self.stream(sid)
        s.header_blocks.append([(str(k), str(v)) for k, v in self._decoder.decode(bytes(block))])
        if flags & END_STREAM:
            s.ended = True

    def _send_quietly(self, data: bytes) -> None:
        if self._pumping:
            # pump() may be in the middle of a frame: our reply goes out after the flood.
            self._outbox.append(data)
            return
        self.send(data)

    def summary(self) -> str:
        """A readable account of what the server sent, for assertion messages."""
        kinds: dict[str, int] = {}
        for f in self.frames:
            name = repr(f).split()[0][1:]
            kinds[name] = kinds.get(name, 0) + 1
        streams = {sid: {"headers": s.header_blocks, "data_bytes": len(s.data), "ended": s.ended,
                         "rst_code": s.rst_code} for sid, s in self.streams.items()}
        return (f"server sent frames {kinds}, goaway={self.goaway}, closed={self.closed}, "
                f"{'send failed: ' + self.send_error + ', ' if self.send_error else ''}"
                f"streams={streams}, last frames={self.frames[-5:]}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
