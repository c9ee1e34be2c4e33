"""A real TLS + HTTP/2 front for the plain HTTP/1.1 vendor fakes: nghttpx (Debian's nghttp2-proxy)
terminating TLS with ALPN h2 and http/1.1 on 127.0.0.1, the fake as its backend. Its access log is
one JSON object per request with the frontend's view of the connection (ALPN protocol, client port,
TLS session reuse), which the fakes behind it cannot see: their connections are nghttpx's."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# Ports the interop suite may take for fronts (the rest of the machine's range is other people's).
PORT_RANGE = range(57000, 58000)
# How long nghttpx may take to accept connections (it starts in well under a second).
START_TIMEOUT_S = 15.0
# How long an access-log line may take to appear after the response head (written at once).
LOG_WAIT_S = 10.0

# One JSON object per request; every field comes from nghttpx's frontend connection.
ACCESS_LOG_FORMAT = ('{"alpn":"$alpn","protocol":"$protocol_version","port":$remote_port,'
                     '"reused":"$tls_session_reused","tls":"$tls_protocol","method":"$method",'
                     '"path":"$path_without_query","status":$status}')


def nghttpx_binary() -> str:
    found = shutil.which("nghttpx") or shutil.which("nghttpx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nghttpx not found: install Debian's nghttp2-proxy (tools/setup.sh does)")
    return found


class TLSFront:
    """One nghttpx process in front of the plain server on `backend_port`, presenting `cert`/`key`.
    `port` is its TLS port once started; `entries()` reads its access log."""

    def __init__(self, name: str, backend_port: int, cert: Path, key: Path, workdir: Path, *, http2: bool = True,
                 read_timeout: str = "5m"):
        self.name = name
        # How long a client connection may send nothing before the front closes it.
        self.read_timeout = read_timeout
        # False: ALPN offers http/1.1 only, as a TLS server without HTTP/2 (an nginx without http2).
        self.http2 = http2
        self.backend_port = backend_port
        self.cert = cert
        self.key = key
        self.workdir = workdir
        self.access_log = workdir / f"{name}.access.jsonl"
        self.error_log = workdir / f"{name}.error.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "TLSFront":
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = nghttpx_binary()
        errors = []
        # Another front (or another engineer's test) may hold a port between our probe and nghttpx's
        # bind: nghttpx then exits, and the next free port is tried.
        for port in _free_ports():
            self.access_log.write_text("")
            cmd = [binary, "--conf=/dev/null", f"--frontend=127.0.0.1,{port}",
                   f"--backend=127.0.0.1,{self.backend_port}", "--workers=1",
                   f"--accesslog-file={self.access_log}", f"--accesslog-format={ACCESS_LOG_FORMAT}",
                   # A line as soon as the response head is in: a stream the client resets midway
                   # is logged too, and a streaming call's line is there while it streams.
                   "--accesslog-write-early",
                   f"--errorlog-file={self.error_log}", "--no-ocsp",
                   # The streams of the fakes' slow scenarios must not be cut by proxy timeouts.
                   "--backend-read-timeout=5m", f"--frontend-http2-read-timeout={self.read_timeout}"]
            cmd += [] if self.http2 else ["--npn-list=http/1.1"]
            cmd += [str(self.key), str(self.cert)]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True)
            if self._wait_until_listening(port):
                self.port = port
                return self
            errors.append(f"port {port}: {self._error_tail()}")
            self.stop()
            if len(errors) >= 5:
                break
        raise RuntimeError(f"nghttpx ({self.name}) did not start:\n" + "\n".join(errors))

    def _wait_until_listening(self, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _error_tail(self) -> str:
        try:
            return "\n".join(self.error_log.read_text("utf-8", "replace").splitlines()[-5:]) or "(no error log)"
        except OSError:
            return "(no error log)"

    def stop(self) -> None:
        """SIGTERM to nghttpx's master, which takes its worker down with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line.strip()]

    def wait_for_entries(self, count: int) -> list[dict]:
        """The access log once it holds at least `count` entries (nghttpx writes a line when the
        backend's response head arrives, which may be a moment after the client saw it)."""
        deadline = time.monotonic() + LOG_WAIT_S
        while True:
            entries = self.entries()
            if len(entries) >= count or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)


def _free_ports():
    """Ports of PORT_RANGE nobody listens on right now, starting at a different place each run."""
    start = int(time.time() * 1000) % len(PORT_RANGE)
    for i in range(len(PORT_RANGE)):
        port = PORT_RANGE[(start + i) % len(PORT_RANGE)]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield port
