"""Several prism-server replicas behind nginx, sharing PostgreSQL and Redis, run by tools/cluster.sh
for the cluster tests: `Cluster` starts and stops it and reads its state file; the front and each
replica are `RemoteServer`s, so the suite's clients (channel(), http1.connect) and its failure
reports (stderr tails) work on them as on any prism-server. Skipped only when nginx, PostgreSQL or
Redis is missing and this is not CI (CI=true: missing is a failure)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import REPO_ROOT, PrismServer

CLUSTER_SH = REPO_ROOT / "tools" / "cluster.sh"
SERVICES_SH = REPO_ROOT / "tools" / "services.sh"
# tools/cluster.sh start: PostgreSQL's initdb and N debug servers on a busy 2-core machine.
CLUSTER_START_TIMEOUT_S = 240.0
CLUSTER_STOP_TIMEOUT_S = 120.0
# How long a condition the tests wait for (a lease expiring, Redis coming back) may take.
CONDITION_TIMEOUT_S = 60.0


def require_cluster_tools() -> None:
    """Skips the module when the cluster's engines are not installed, except in CI."""
    missing = [package for package, found in (
        ("nginx-light", shutil.which("nginx") or Path("/usr/sbin/nginx").exists()),
        ("redis-server", shutil.which("redis-server")),
        ("postgresql", list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))) if not found]
    if not missing:
        return
    message = f"the cluster tests need {', '.join(missing)} (tools/setup.sh installs them)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def wait_for(condition, what: str, timeout: float = CONDITION_TIMEOUT_S, interval: float = 0.05):
    """Polls `condition` until it returns something truthy (returned), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


class RemoteServer(PrismServer):
    """A prism-server (or nginx in front of several) that tools/cluster.sh started, not this
    process: its address, and for a replica its pid and stderr log."""

    def __init__(self, name: str, address: str, workdir: Path, *, pid: int | None = None,
                 log_path: Path | None = None, tls: bool = False, ca_cert: Path | None = None):
        super().__init__(Path("prism-server"), name, [], workdir, tls=tls, ca_cert=ca_cert)
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.pid = pid
        self.log_path = log_path or workdir / "nginx" / "error.log"

    def start(self) -> "RemoteServer":
        raise NotImplementedError("tools/cluster.sh starts the cluster's servers")

    def alive(self) -> bool:
        if self.pid is None:
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # A killed child of cluster.sh's shell stays a zombie until init reaps it.
        stat = Path(f"/proc/{self.pid}/stat")
        return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"

    def kill(self) -> None:
        """kill -9, and wait until it is gone."""
        assert self.pid is not None, f"{self.name} has no process of its own"
        os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not self.alive(), f"{self.name} (pid {self.pid}) to die after SIGKILL", timeout=10)

    def stop(self, timeout: float = 0) -> int:
        return 0  # tools/cluster.sh stop does it

    def get(self, path: str) -> tuple[int, str]:
        """A plain HTTP/1.1 GET (cleartext only): status and body."""
        assert not self.tls
        try:
            with urllib.request.urlopen(f"http://{self.target}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of /metrics samples called `name` whose labels include `labels`."""
        status, text = self.get("/metrics")
        assert status == 200, (status, text[:200])
        total = 0.0
        for line in text.splitlines():
            match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
            if not match or match[1] != name:
                continue
            have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[3] or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(match[4])
        return total


class Cluster:
    """One tools/cluster.sh cluster in `workdir`: `grpc` (h2c front), `http` (HTTP/1.1 front), `tls`
    (both, by ALPN) and `replicas`, each a RemoteServer."""

    def __init__(self, workdir: Path, replicas: int = 2, config: Path | None = None,
                 env: dict[str, str] | None = None, server_args: list[str] = ()):
        self.dir = workdir
        self.replica_count = replicas
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.server_args = list(server_args)
        self.state: dict[str, str] = {}

    def start(self) -> "Cluster":
        command = [str(CLUSTER_SH), "start", "--dir", str(self.dir), "--port", "0", "--replicas", str(self.replica_count)]
        if self.config is not None:
            command += ["--config", str(self.config)]
        command += ["--", *self.server_args]
        self._run(command, CLUSTER_START_TIMEOUT_S)
        self.state = self.read_state()
        return self

    def read_state(self) -> dict[str, str]:
        state = {}
        for line in (self.dir / "cluster.env").read_text().splitlines():
            name, _, value = line.partition("=")
            state[name] = shlex.split(value)[0] if value else ""
        return state

    def stop(self) -> None:
        self._run([str(CLUSTER_SH), "destroy" if not os.environ.get("PRISM_KEEP_TEST_DIR") else "stop",
                   "--dir", str(self.dir)], CLUSTER_STOP_TIMEOUT_S)

    def _run(self, command: list[str], timeout: float) -> None:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr}\n{self.logs()}")

    # Shown under this title in a failing test's report (conftest.py's hook).
    artifacts_title = "cluster logs"

    def failure_artifacts(self, test_name: str) -> str:
        return self.logs()

    def logs(self) -> str:
        """The end of every replica's stderr and nginx's error log, for a failure message."""
        parts = []
        for path in sorted(self.dir.glob("replica-*/stderr.log")) + [self.dir / "nginx" / "error.log"]:
            if path.exists():
                lines = path.read_text("utf-8", "replace").splitlines()[-15:]
                parts.append(f"--- {path.relative_to(self.dir)}\n" + "\n".join(lines))
        return "\n".join(parts)

    # --- the servers ---

    @property
    def grpc(self) -> RemoteServer:
        return RemoteServer("nginx-h2c", self.state["FRONT_H2C"], self.dir)

    @property
    def http(self) -> RemoteServer:
        return RemoteServer("nginx-http", self.state["FRONT_HTTP"], self.dir)

    @property
    def tls(self) -> RemoteServer:
        return RemoteServer("nginx-tls", self.state["FRONT_TLS"], self.dir, tls=True, ca_cert=Path(self.state["TLS_CA"]))

    @property
    def replicas(self) -> list[RemoteServer]:
        return [RemoteServer(f"replica-{i}", self.state[f"REPLICA_{i}"], self.dir, pid=int(self.state[f"REPLICA_{i}_PID"]),
                             log_path=self.dir / f"replica-{i}" / "stderr.log")
                for i in range(1, int(self.state["REPLICAS"]) + 1)]

    # --- the shared engines ---

    @property
    def redis_dir(self) -> Path:
        return self.dir / "redis"

    def redis_stop(self) -> None:
        subprocess.run([str(SERVICES_SH), "redis", "stop", str(self.redis_dir)], check=True, timeout=30)

    def redis_start(self) -> None:
        """Starts Redis again on the port it had (empty: it keeps nothing on disk)."""
        port = self.state["REDIS_URL"].rsplit(":", 1)[1]
        subprocess.run([str(SERVICES_SH), "redis", "start", str(self.redis_dir), port], check=True, timeout=30,
                       capture_output=True)
