"""A local HTTP origin for the Media.uri tests (test_media_uri.py): an http.server on a host and an
ephemeral port, with routes for an image, redirects, a 404, bodies far over a limit and a stalled
answer, and logs of the requests it got and of the answers whose client went away."""

from __future__ import annotations

import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from test_generate import png

MAX_BYTES = 1_000_000   # media.fetch.max_bytes of the tests' configured server; /big sends 50 times it
WAIT_S = 15.0           # how long a test polls for something the origin should see
IMAGE = png(64, 48)


class Origin:
    """An HTTP origin on `host`, port chosen by the kernel, with a log of the requests it got and
    of the responses a client cut short."""

    def __init__(self, host: str):
        self.hits: list[str] = []
        self.cut: list[str] = []   # paths whose client went away mid-answer
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                origin.hits.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                route = url.path
                if route == "/image.png":
                    # A declared type that lies: the gateway must sniff.
                    self._answer(200, IMAGE, "application/octet-stream")
                elif route == "/redirect":
                    self._redirect(query["to"][0])
                elif route.startswith("/chain/"):
                    left = int(route.rsplit("/", 1)[1])  # redirects still to go
                    if left > 0:
                        self._redirect(f"/chain/{left - 1}")
                    else:
                        self._answer(200, IMAGE, "image/png")
                elif route == "/sized":
                    self._answer(200, IMAGE + bytes(int(query["n"][0]) - len(IMAGE)), "image/png")
                elif route == "/missing":
                    self._answer(404, b"not here", "text/plain")
                elif route == "/overloaded":
                    self._answer(503, b"try later", "text/plain")
                elif route == "/big":
                    self._endless(declared_length=None)
                elif route == "/big-declared":
                    self._endless(declared_length=50 * MAX_BYTES)
                elif route == "/stall":
                    self._stall()
                else:
                    self._answer(404, b"no route", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _endless(self, declared_length: int | None) -> None:
                """Far more than MAX_BYTES, until the client goes away."""
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                if declared_length is not None:
                    self.send_header("Content-Length", str(declared_length))
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = IMAGE * (65536 // len(IMAGE) + 1)
                try:
                    for _ in range(50 * MAX_BYTES // len(chunk)):
                        self.wfile.write(chunk)
                except OSError:
                    origin.cut.append(self.path)

            def _stall(self) -> None:
                """Headers and a few bytes, then a byte now and then, never the end."""
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                deadline = time.monotonic() + 60
                try:
                    self.wfile.write(IMAGE[:16])
                    while time.monotonic() < deadline:
                        time.sleep(0.05)
                        self.wfile.write(b"\0")
                        self.wfile.flush()
                except OSError:
                    origin.cut.append(self.path)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name=f"origin-{host}", daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def wait_for(self, what: str, condition) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"the origin {self.base} never saw {what}; hits {self.hits}, cut {self.cut}"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
