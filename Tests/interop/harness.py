"""The interop suite's machinery: Python stubs generated from proto/, throwaway TLS certificates, and
prism-server run as a child process exactly as a user runs it. conftest.py wires these into fixtures;
tests use them through those fixtures and the small helpers at the end of this file."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"

# How long prism-server may take to print its listening line (a cold debug build on a busy
# 2-core CI machine can be slow to start; a healthy one takes well under a second).
STARTUP_TIMEOUT_S = 60.0
# How long prism-server may take to exit after SIGTERM: its grace period for in-flight RPCs
# plus slack. Every fixture shutdown checks this, so a server that ignores SIGTERM fails loudly.
SHUTDOWN_TIMEOUT_S = 20.0
# Deadline for an ordinary RPC in a test. Generous: a hang shows up as DEADLINE_EXCEEDED with a
# name attached, well before pytest-timeout's blunt per-test limit.
RPC_TIMEOUT_S = 20.0

# gRPC interop's special_status_message: whitespace, a BMP and a non-BMP character.
SPECIAL_STATUS_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"

LISTENING_LINE = re.compile(r"^prism-server listening on (?P<host>\S+):(?P<port>\d+) \((?P<mode>h2c|tls)\)$")


# --- generated stubs --------------------------------------------------------------------------


def generate_stubs(out_dir: Path) -> None:
    """Runs grpc_tools.protoc over every .proto under proto/ into out_dir (a temporary directory,
    never committed) and makes the result importable.

    Our files live in the `grpc.*` proto packages (grpc/testing, grpc/health, grpc/reflection), so
    the generated modules are `grpc.testing.test_pb2` and so on: inside the installed `grpc`
    package. grpcio ships no `grpc.testing`, `grpc.health` or `grpc.reflection`, so adding out_dir/grpc
    to grpc.__path__ lets both live side by side without renaming anything."""
    import grpc
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT}")
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{PROTO_ROOT}", f"-I{well_known}",
        f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
        *protos,
    ]
    done = subprocess.run(cmd, cwd=PROTO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            "grpc_tools.protoc failed on proto/ (exit %d):\n%s%s" % (done.returncode, done.stdout, done.stderr)
        )
    sys.path.insert(0, str(out_dir))
    if (out_dir / "grpc").is_dir():
        grpc.__path__.append(str(out_dir / "grpc"))


# --- TLS certificates ---------------------------------------------------------------------------


class Certs:
    """A throwaway CA, a server certificate for localhost / 127.0.0.1 and a client certificate, all
    signed by that CA, made with the openssl CLI in `directory`."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.ca_cert = directory / "ca.pem"
        self.ca_key = directory / "ca.key"
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        self.client_cert = directory / "client.pem"
        self.client_key = directory / "client.key"

    def generate(self) -> "Certs":
        self.dir.mkdir(parents=True, exist_ok=True)
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", "/CN=Prism interop test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", self.ca_key, "-out", self.ca_cert,
        )
        self._leaf("server", self.server_cert, self.server_key, "localhost",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self._leaf("client", self.client_cert, self.client_key, "prism-interop-client",
                   "extendedKeyUsage=clientAuth\n")
        return self

    def _leaf(self, name: str, cert: Path, key: Path, cn: str, extensions: str) -> None:
        csr = self.dir / f"{name}.csr"
        ext = self.dir / f"{name}.ext"
        ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" + extensions)
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={cn}",
                      "-keyout", key, "-out", csr)
        self._openssl("x509", "-req", "-sha256", "-days", "2", "-in", csr,
                      "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
                      "-extfile", ext, "-out", cert)

    def _openssl(self, *args: object) -> None:
        cmd = ["openssl", *map(str, args)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stderr}")


# --- the server under test ----------------------------------------------------------------------


class ServerStartError(RuntimeError):
    pass


class PrismServer:
    """One prism-server child process. Started with `--listen 127.0.0.1:0`; the port comes from
    the one line the server prints on stdout when it is ready. stderr goes to a log file whose tail
    is attached to every failing test that used this server."""

    def __init__(self, binary: Path, name: str, args: Sequence[str], workdir: Path, *,
                 tls: bool = False, ca_cert: Path | None = None,
                 env: dict[str, str] | None = None, listen: str | None = "127.0.0.1:0"):
        self.binary = binary
        self.name = name
        self.args = list(args)
        self.workdir = workdir
        self.tls = tls
        self.ca_cert = ca_cert
        self.extra_env = env or {}
        self.listen = listen
        self.proc: subprocess.Popen | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.mode = ""
        self.stdout_lines: list[str] = []
        self.log_path = workdir / f"{name}.stderr.log"
        self._lines: "queue.Queue[str | None]" = queue.Queue()

    # The command line, for messages.
    @property
    def command(self) -> list[str]:
        cmd = [str(self.binary)]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        return cmd + self.args

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "PrismServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        data_dir = self.workdir / f"{self.name}-data"
        data_dir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PRISM_LISTEN"}
        env["PRISM_DATA_DIR"] = str(data_dir)
        env.update(self.extra_env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log, env=env, cwd=self.workdir)
        threading.Thread(target=self._read_stdout, name=f"{self.name}-stdout", daemon=True).start()

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self._lines.empty():
                    raise ServerStartError(self._describe_failure(
                        f"exited with code {self.proc.returncode} before printing its listening line"))
                if time.monotonic() > deadline:
                    self.kill()
                    raise ServerStartError(self._describe_failure(
                        f"printed no listening line within {STARTUP_TIMEOUT_S:.0f}s"))
                continue
            if line is None:  # stdout closed
                self.proc.wait(timeout=5)
                raise ServerStartError(self._describe_failure(
                    f"closed stdout (exit code {self.proc.returncode}) before printing its listening line"))
            match = LISTENING_LINE.match(line)
            if not match:
                self.kill()
                raise ServerStartError(self._describe_failure(
                    "printed %r on stdout; the first stdout line must be exactly "
                    "'prism-server listening on HOST:PORT (h2c|tls)'" % line))
            self.host, self.port, self.mode = match["host"], int(match["port"]), match["mode"]
            want = "tls" if self.tls else "h2c"
            if self.mode != want:
                self.kill()
                raise ServerStartError(self._describe_failure(f"says it listens with {self.mode}, expected {want}"))
            if self.port == 0:
                self.kill()
                raise ServerStartError(self._describe_failure("reported port 0 instead of the port it bound"))
            return self

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> int:
        """SIGTERM, then wait up to `timeout` for a graceful exit; returns the exit code. Raises if
        the server had already died (a crash during the tests) or does not exit in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is not None:
            raise AssertionError(self._describe_failure(
                f"had already exited with code {self.proc.returncode} before the suite stopped it (a crash?)"))
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stacks = self.thread_stacks()
            self.kill()
            raise AssertionError(self._describe_failure(f"did not exit within {timeout:.0f}s of SIGTERM; killed")
                                 + f"\n  threads when it was killed:\n{_indent(stacks)}")

    def thread_stacks(self) -> str:
        """Every thread's backtrace of the running server (gdb, when installed): what a hung
        server was waiting for."""
        if shutil.which("gdb") is None or self.proc is None:
            return "(gdb is not installed)"
        done = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt 30"],
                              capture_output=True, text=True, timeout=120)
        lines = [line for line in done.stdout.splitlines() if line.startswith(("#", "Thread "))]
        return "\n".join(lines) or done.stderr[-2000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr; for a crash, the lines before it, the crash line and the
        crashed thread's backtrace (Swift prints every thread, the useful one is rarely last)."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        all_lines = text.splitlines()
        crash = next((i for i, line in enumerate(all_lines)
                      if "Program crashed" in line or "Fatal error" in line), None)
        if crash is None:
            return "\n".join(all_lines[-lines:]) or "(empty)"
        excerpt = all_lines[max(0, crash - 12):crash + 1]
        thread = next((i for i, line in enumerate(all_lines) if i > crash and line.rstrip().endswith(" crashed:")), None)
        if thread is not None:
            excerpt += ["..."] + all_lines[thread:thread + 24]
        return "\n".join(excerpt)

    def _describe_failure(self, what: str) -> str:
        return (f"prism-server ({self.name}) {what}.\n  command: {' '.join(self.command)}\n"
                f"  stdout: {self.stdout_lines!r}\n  stderr (last lines):\n{_indent(self.log_tail())}")

    # --- clients ---

    def channel(self, *, compression=None, options: Iterable[tuple[str, object]] = (),
                credentials=None):
        """A grpcio channel to this server: plaintext h2c, or TLS verified against the test CA
        with the name `localhost` (the certificate has both localhost and 127.0.0.1)."""
        import grpc

        merged = {
            "grpc.enable_http_proxy": 0,  # never route loopback tests through a proxy from the env
            "grpc.enable_retries": 0,     # a failure must show, not be retried away
        }
        merged.update(dict(options))      # the caller's choice wins
        if self.tls:
            if credentials is None:
                credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_cert.read_bytes())
            merged["grpc.ssl_target_name_override"] = "localhost"
        opts = list(merged.items())
        if self.tls:
            return grpc.secure_channel(self.target, credentials, options=opts, compression=compression)
        return grpc.insecure_channel(self.target, options=opts, compression=compression)

    def raw(self, **kwargs):
        """A raw HTTP/2 connection (see h2raw.py), over TLS with ALPN h2 when the server uses TLS."""
        from h2raw import Connection

        return Connection(self.host, self.port, ca_cert=self.ca_cert if self.tls else None, **kwargs)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# --- helpers for tests --------------------------------------------------------------------------


def zeros(n: int) -> bytes:
    return bytes(n)


def rpc_error(call: Callable[[], object], what: str):
    """Runs `call`, which must fail with a gRPC status; returns the grpc.RpcError. If it succeeds
    the test fails saying what was expected."""
    import grpc

    try:
        result = call()
        # A streaming answer fails only once it is read.
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            result = list(result)
    except grpc.RpcError as err:
        return err
    raise AssertionError(f"{what}: expected the call to fail, but it succeeded with {short(result)}")


def assert_status(err, code, what: str, details: str | None = None) -> None:
    assert err.code() == code, (
        f"{what}: expected status {code.name}, got {err.code().name} with message {err.details()!r}")
    if details is not None:
        assert err.details() == details, f"{what}: expected message {details!r}, got {err.details()!r}"


def short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def assert_serving(server: PrismServer, what: str = "after the previous abuse") -> None:
    """The server process is alive and a fresh grpcio channel gets an answer to a plain RPC: the
    proof that one bad connection did not take the server down with it."""
    import grpc
    from grpc.testing import empty_pb2, test_pb2_grpc

    assert server.alive(), server._describe_failure(f"died {what} (exit code {server.proc.returncode})")
    with server.channel() as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        try:
            stub.EmptyCall(empty_pb2.Empty(), timeout=10, wait_for_ready=True)
        except grpc.RpcError as err:
            raise AssertionError(
                f"the server stopped serving new connections {what}: EmptyCall on a fresh channel "
                f"failed with {err.code().name}: {err.details()!r}\n"
                f"stderr (last lines):\n{_indent(server.log_tail())}") from None
