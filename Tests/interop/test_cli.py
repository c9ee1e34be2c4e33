"""The `prism` CLI as a user runs it: `prism media fit` over many files and folders into an output
folder (offline, no server), and `--json` on the commands, whose output must parse as one JSON
document or as JSON lines for the streaming ones (against a prism-server with the vendor fakes)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

from conftest import server_binary
from pdfmaker import text_pdf
from test_vendors import OPENAI_MODEL, fakes, png, vendor_server  # noqa: F401 (fixtures)

CLI_TIMEOUT_S = 120


def prism(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_binary().parent / "prism"), *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, cwd=cwd)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def image_folder(root: Path) -> Path:
    """photos/ with two images, one in a subfolder, and a text file that is no image."""
    photos = root / "photos"
    (photos / "trip").mkdir(parents=True)
    (photos / "wide.png").write_bytes(png(800, 400))
    (photos / "trip" / "tall.png").write_bytes(png(200, 800))
    (photos / "notes.txt").write_text("not an image, not picked up from a folder")
    return photos


# --- prism media fit, many images ----------------------------------------------------------------


def test_media_fit_fits_files_and_folders_into_the_output_folder(tmp_path):
    image_folder(tmp_path)
    (tmp_path / "single.png").write_bytes(png(640, 640))
    done = prism("media", "fit", "photos", "single.png", "--max-long-edge", "400", "--format", "png", "--out", "fitted",
                 cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # One line per image, in the order they finished (parallel), each naming input and output.
    assert len(lines) == 3 and {line.split()[1] for line in lines} == {"photos/wide.png", "photos/trip/tall.png", "single.png"}, lines
    assert all(line.startswith("ok ") for line in lines), lines
    assert "ok photos/wide.png → fitted/wide.png: png 800×400" in done.stdout and " png 400×200 " in done.stdout, lines
    # Each keeps its name and its path under the folder given.
    assert png_size(tmp_path / "fitted" / "wide.png") == (400, 200)
    assert png_size(tmp_path / "fitted" / "trip" / "tall.png") == (100, 400)
    assert png_size(tmp_path / "fitted" / "single.png") == (400, 400)
    assert sorted(p.relative_to(tmp_path / "fitted").as_posix() for p in (tmp_path / "fitted").rglob("*") if p.is_file()) == \
        ["single.png", "trip/tall.png", "wide.png"]


def test_media_fit_names_the_failed_files_and_exits_non_zero(tmp_path):
    photos = image_folder(tmp_path)
    (photos / "broken.jpg").write_text("these bytes are no JPEG")
    (tmp_path / "also-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10))
    done = prism("media", "fit", "photos", "also-broken.png", "--max-long-edge", "300", "--out", "fitted", "--jobs", "2",
                 cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    assert sorted(line.split()[1].rstrip(":") for line in failed) == ["also-broken.png", "photos/broken.jpg"], done.stdout
    assert "prism media fit: 2 of 4 images failed: photos/broken.jpg, also-broken.png" in done.stderr, done.stderr
    # The others were fitted all the same.
    assert png_size(tmp_path / "fitted" / "trip" / "tall.png")[1] == 300


def test_media_fit_json_prints_one_line_per_image(tmp_path):
    photos = image_folder(tmp_path)
    (photos / "broken.png").write_text("no PNG")
    done = prism("media", "fit", "photos", "--max-pixels", "10000", "--out", "fitted", "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {row["input"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert set(rows) == {"photos/wide.png", "photos/trip/tall.png", "photos/broken.png"}, rows
    assert "error" in rows["photos/broken.png"] and "report" not in rows["photos/broken.png"], rows
    wide = rows["photos/wide.png"]
    assert wide["report"]["width"] * wide["report"]["height"] <= 10000, wide
    assert Path(tmp_path / wide["output"]).is_file() and wide["report"]["bytes"] == (tmp_path / wide["output"]).stat().st_size


def test_media_fit_refuses_two_images_that_would_write_one_output(tmp_path):
    image_folder(tmp_path)
    (tmp_path / "wide.jpg").write_bytes(png(10, 10))
    done = prism("media", "fit", "photos", "wide.jpg", "--max-long-edge", "300", "--out", "fitted", cwd=tmp_path)
    assert done.returncode != 0
    assert "photos/wide.png and wide.jpg would both be written as fitted/wide.*" in done.stderr, done.stderr
    assert not list((tmp_path / "fitted").rglob("*.*")), "nothing is written when the outputs collide"


def test_media_fit_of_several_images_needs_an_output_folder(tmp_path):
    image_folder(tmp_path)
    done = prism("media", "fit", "photos", "--max-long-edge", "300", cwd=tmp_path)
    assert done.returncode != 0 and "several images or a folder need --out DIR" in done.stderr, done.stderr


# --- --json --------------------------------------------------------------------------------------


def json_lines(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_generate_json_prints_each_event_as_a_json_line(vendor_server, fakes, tmp_path):
    (tmp_path / "cat.png").write_bytes(png(64, 48))
    prompt = "what does the cli json show?"
    events = json_lines(prism("generate", prompt, "-f", str(tmp_path / "cat.png"), "--model", OPENAI_MODEL,
                              "--server", vendor_server.target, "--json"))
    # proto3 JSON of each GenerateEvent, as Connect sends them: lowerCamelCase, 64-bit integers as strings.
    assert events[0]["routed"]["model"] == OPENAI_MODEL, events
    assert "".join(e["text"]["text"] for e in events if "text" in e) == f"You said: {prompt} [image 64x48 image/png]", events
    (usage,) = [e["usage"] for e in events if "usage" in e]
    assert usage["inputTokens"] == "16" and usage["outputTokens"] == "7" and usage["costUsdMicros"] == "110", usage
    assert events[-1] == {"finished": {"stopReason": "STOP_END_TURN"}}, events


def test_unary_commands_print_one_json_document(vendor_server):
    (providers,) = json_lines(prism("providers", "--server", vendor_server.target, "--json"))
    models = {m["id"] for p in providers["providers"] for m in p.get("models", [])}
    assert OPENAI_MODEL in models, models
    assert json_lines(prism("health", "--server", vendor_server.target, "--json")) == [{"status": "SERVING"}]
    (services,) = json_lines(prism("services", "--server", vendor_server.target, "--json"))
    assert {"name": "prism.v1.Prism"} in services["service"], services


def test_index_commands_print_json(vendor_server, tmp_path):
    notes = tmp_path / "rotation.md"
    notes.write_text("# Keys\n\nRotate the signing key every ninety days with the rotate command.\n")
    (added,) = json_lines(prism("index", "add", "cli-json", str(notes), "--id", "rot", "--server", vendor_server.target, "--json"))
    assert added["documentId"] == "rot" and int(added["chunks"]) >= 1, added
    (listed,) = json_lines(prism("index", "ls", "cli-json", "--server", vendor_server.target, "--json"))
    assert [d["documentId"] for d in listed["documents"]] == ["rot"], listed
    events = json_lines(prism("index", "query", "cli-json", "how often is the signing key rotated?", "--retrieve-only",
                              "--server", vendor_server.target, "--json"))
    (hits,) = [e["hits"] for e in events if "hits" in e]
    assert hits["text"][0]["documentId"] == "rot" and "ninety days" in hits["text"][0]["text"], hits
    assert json_lines(prism("index", "rm", "cli-json", "rot", "--server", vendor_server.target, "--json")) == [{"deleted": True}]


def test_media_commands_print_json(tmp_path):
    (tmp_path / "doc.pdf").write_bytes(text_pdf([["First page words"], ["Second page, more words here"]]))
    pages = json_lines(prism("media", "pages", "doc.pdf", "-o", "pages", "--dpi", "30", "--json", cwd=tmp_path))
    assert [(p["page"], p["words"]) for p in pages] == [(1, 3), (2, 5)], pages
    assert all((tmp_path / p["image"]).is_file() and p["report"]["width"] > 0 for p in pages), pages
    done = prism("media", "inspect", "doc.pdf", "--json", cwd=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["document"]["pages"] == 2, done.stdout + done.stderr
