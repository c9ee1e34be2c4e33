"""The example clients of examples/ (Go, C++, Python, curl) built from their own build files and run
as a user runs them against a real prism-server whose OpenAI plugin talks to the fake of tools/fakes/:
each sends an image and a question with Generate and must print the fake's streamed answer and the
usage. The Go and C++ builds are cached in .build/examples, so only the first run pays for them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO_ROOT
from test_vendors import OPENAI_MODEL, fakes, png, vendor_server  # noqa: F401 (fixtures)

EXAMPLES = REPO_ROOT / "examples"
BUILD_DIR = REPO_ROOT / ".build" / "examples"
# A cold build of the C++ stubs (gRPC's headers are heavy) and of Go's gRPC package takes a few
# minutes on a busy 2-core machine; a cached one, seconds.
BUILD_TIMEOUT_S = 900
RUN_TIMEOUT_S = 60
# The usage the OpenAI fake reports (16 in, 7 out) at gpt-4o's prices: 16 × $2.50 + 7 × $10 per million.
USAGE_LINE = re.compile(r"^usage: 16 input tokens, 7 output tokens, \$0\.000110$")
# What each toolchain needs (Debian packages that tools/setup.sh installs).
TOOLS = {"go": ("go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"),
         "cpp": ("g++", "make", "protoc", "grpc_cpp_plugin", "pkg-config"),
         "curl": ("curl", "jq")}


def require_tools(language: str) -> None:
    """Skips when the toolchain is clearly not installed here, except in CI, where that fails."""
    missing = [t for t in TOOLS.get(language, ()) if shutil.which(t) is None]
    if missing:
        message = f"{language} example needs {', '.join(missing)} (tools/setup.sh installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def build(language: str) -> Path:
    """Builds one compiled example with its own build file; returns the binary."""
    require_tools(language)
    env = dict(os.environ, PRISM_EXAMPLES_BUILD=str(BUILD_DIR))
    if language == "go":
        cmd, binary = [str(EXAMPLES / "go" / "build.sh")], BUILD_DIR / "go" / "prism-go-client"
    else:
        cmd, binary = ["make", "-s", "-C", str(EXAMPLES / "cpp"), "-j2"], BUILD_DIR / "cpp" / "prism-cpp-client"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    assert binary.is_file(), f"{' '.join(cmd)} succeeded but made no {binary}"
    return binary


def command(language: str) -> list[str]:
    if language in ("go", "cpp"):
        return [str(build(language))]
    require_tools(language)
    if language == "python":
        return [sys.executable, str(EXAMPLES / "python" / "client.py")]
    return [str(EXAMPLES / "curl" / "generate.sh")]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRISM_EXAMPLES_BUILD=str(BUILD_DIR))
    env.pop("PRISM_ADDRESS", None)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


LANGUAGES = ["go", "cpp", "python", "curl"]


@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
@pytest.mark.parametrize("language", LANGUAGES)
def test_example_prints_the_streamed_answer_and_usage(language, vendor_server, fakes, tmp_path: Path):
    picture = tmp_path / "picture.png"
    picture.write_bytes(png(64, 48))
    question = f"What is in this picture, asks the {language} example?"
    done = run(command(language) + ["--server", vendor_server.target, "--model", OPENAI_MODEL, str(picture), question])
    assert done.returncode == 0, f"{language} example failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    lines = done.stdout.splitlines()
    assert lines[0] == f"routed: {OPENAI_MODEL}", lines
    # The fake echoes the question and describes each image it received.
    assert f"You said: {question} [image 64x48 image/png]" in lines, lines
    assert any(USAGE_LINE.match(line) for line in lines), lines
    assert lines[-1] == "finished: STOP_END_TURN", lines
    sent = fakes["openai"].requests(question)
    assert len(sent) == 1 and sent[0]["body"]["model"] == "gpt-4o", sent


@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
@pytest.mark.parametrize("language", LANGUAGES)
def test_example_reports_the_servers_error_and_fails(language, vendor_server, tmp_path: Path):
    picture = tmp_path / "picture.png"
    picture.write_bytes(png(8, 8))
    done = run(command(language) + ["--server", vendor_server.target, "--model", "openai/no-such-model-here",
                                    str(picture), "hello"])
    assert done.returncode == 1, f"{language}: expected exit 1, got {done.returncode}:\n{done.stdout}{done.stderr}"
    # grpc-go spells codes in CamelCase, the others as the gRPC code names.
    assert re.search(r"(FAILED_PRECONDITION|FailedPrecondition): model 'openai/no-such-model-here' is not served",
                     done.stderr), done.stderr


def test_curl_unary_example_lists_the_fakes_models(vendor_server):
    require_tools("curl")
    done = run([str(EXAMPLES / "curl" / "list-models.sh"), "--server", vendor_server.target])
    assert done.returncode == 0, done.stdout + done.stderr
    rows = dict(line.split("\t") for line in done.stdout.splitlines())
    assert rows[OPENAI_MODEL] == "MODALITY_TEXT,MODALITY_IMAGE,MODALITY_PDF", rows
