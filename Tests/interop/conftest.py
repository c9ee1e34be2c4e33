"""Fixtures of the interop suite: Python stubs generated from proto/ at session start, TLS certificates
made for the session, and prism-server processes started on demand (one per configuration and
transport, shared by the tests that need it, stopped with SIGTERM at the end).

PRISM_SERVER_BIN names the server binary (default: .build/debug/prism-server in the repository)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# grpcio's C core logs handshake failures and the like to stderr at INFO; the tests that provoke
# them on purpose would bury real output. Errors still show.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from harness import REPO_ROOT, Certs, PrismServer, generate_stubs  # noqa: E402

API_KEY = "secret"
OTHER_API_KEY = "second-key"

# Server configurations by name; TLS flags are added for the "tls" transport.
CONFIGS: dict[str, list[str]] = {
    "interop": ["--interop"],
    "plain": [],
    "auth": ["--interop", "--api-key", API_KEY, "--api-key", OTHER_API_KEY, "--auth", "on"],
    "auth-auto": ["--interop", "--api-key", API_KEY],
    "auth-off": ["--interop", "--api-key", API_KEY, "--auth", "off"],
    "limits": ["--interop", "--max-receive-message-bytes", "1000", "--max-concurrent-streams", "4"],
    # For the bad-input tests alone, so their floods never share a server with other tests.
    "abuse": ["--interop"],
}

_session_dir: Path | None = None


def server_binary() -> Path:
    value = os.environ.get("PRISM_SERVER_BIN", ".build/debug/prism-server")
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


def pytest_configure(config: pytest.Config) -> None:
    global _session_dir
    binary = server_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise pytest.UsageError(
            f"prism-server not found at {binary}: build it (swift build) or point PRISM_SERVER_BIN at it")
    _session_dir = Path(tempfile.mkdtemp(prefix="prism-interop-"))
    try:
        generate_stubs(_session_dir / "stubs")
    except RuntimeError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_dir is not None and not os.environ.get("PRISM_KEEP_TEST_DIR"):
        shutil.rmtree(_session_dir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Attaches the stderr tail of every prism-server a failing test used to its report, and the
    browser's screenshot and console log when it used one (console_browser.py)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        seen = set()
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, PrismServer) and id(value) not in seen:
                seen.add(id(value))
                report.sections.append((f"prism-server {value.name} stderr (last lines)", value.log_tail()))
            artifacts = getattr(value, "failure_artifacts", None)  # the console tests' browser, a cluster
            if callable(artifacts) and id(value) not in seen:
                seen.add(id(value))
                report.sections.append((getattr(value, "artifacts_title", "browser"), artifacts(item.name)))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_dir() -> Path:
    assert _session_dir is not None
    return _session_dir


class ServerPool:
    """Starts each (configuration, transport) server the first time a test asks for it."""

    def __init__(self, workdir: Path, certs_dir: Path):
        self.workdir = workdir
        self._certs_dir = certs_dir
        self._certs: Certs | None = None
        self._servers: dict[tuple[str, str], PrismServer] = {}

    @property
    def certs(self) -> Certs:
        """The session's CA, server and client certificates, made on first use."""
        if self._certs is None:
            self._certs = Certs(self._certs_dir).generate()
        return self._certs

    def get(self, config: str, transport: str) -> PrismServer:
        key = (config, transport)
        if key not in self._servers:
            self._servers[key] = self.start(f"{config}-{transport}", CONFIGS[config], transport)
        return self._servers[key]

    def start(self, name: str, args: list[str], transport: str, **kwargs) -> PrismServer:
        """A new server that the caller owns (and stops), unless started through get()."""
        args = list(args)
        ca = None
        if transport in ("tls", "mtls"):
            certs = self.certs
            args += ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
            if transport == "mtls":
                args += ["--tls-client-ca", str(certs.ca_cert)]
            ca = certs.ca_cert
        else:
            assert transport == "h2c", transport
        server = PrismServer(server_binary(), name, args, self.workdir, tls=ca is not None, ca_cert=ca, **kwargs)
        return server.start()

    def stop_all(self) -> None:
        errors = []
        for server in self._servers.values():
            try:
                server.stop()
            except AssertionError as err:
                errors.append(str(err))
        self._servers.clear()
        if errors:
            raise AssertionError("\n\n".join(errors))


@pytest.fixture(scope="session")
def servers(session_dir: Path):
    pool = ServerPool(session_dir / "servers", session_dir / "certs")
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def certs(servers: ServerPool) -> Certs:
    return servers.certs


@pytest.fixture(scope="session", params=["h2c", "tls"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def interop_server(servers: ServerPool, transport: str) -> PrismServer:
    """prism-server --interop, over h2c and over TLS."""
    return servers.get("interop", transport)


@pytest.fixture
def channel(interop_server: PrismServer):
    with interop_server.channel() as ch:
        yield ch


@pytest.fixture
def stub(channel):
    from grpc.testing import test_pb2_grpc

    return test_pb2_grpc.TestServiceStub(channel)
