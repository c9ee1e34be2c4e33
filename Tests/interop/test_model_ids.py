"""Any model id of a configured vendor (plugin ABI 1.3 families), aliases from the config, and one
source of vendor limits, from the Python grpcio client against the real vendor plugins and the fakes
of tools/fakes/: an id no plugin lists reaches the vendor verbatim, an id no family matches is
refused naming what is served, ListProviders keeps its known rows, `models.aliases` resolve in the
route and its fallbacks (and bad ones stop the server at startup), and `prism media fit --provider
anthropic` produces byte for byte what the gateway sends Anthropic. The fakes and the shared server
come from test_vendors."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool, server_binary
from harness import RPC_TIMEOUT_S, ServerStartError
from test_vendors import (ANTHROPIC_KEY, OPENAI_KEY, fakes, generate, kinds, ok, png, request,  # noqa: F401
                          text_of, vendor_server)

# The article's id: a dated Claude snapshot that is not one of the plugin's known rows.
ARTICLE_MODEL = "anthropic/claude-sonnet-4-20250514"
KNOWN_ANTHROPIC = {"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5", "anthropic/claude-opus-4-1"}
CLI_TIMEOUT_S = 120


def vendor_env(fakes) -> dict[str, str]:  # noqa: F811
    """The environment of test_vendors' server: every vendor plugin pointed at its fake."""
    return {
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{fakes['openai'].port}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fakes['anthropic'].port}",
        "GEMINI_API_KEY": "gk-interop", "GEMINI_BASE_URL": f"http://127.0.0.1:{fakes['gemini'].port}/v1beta",
        "HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "", "ALL_PROXY": "", "all_proxy": "",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }


def list_providers(server) -> prism_pb2.ListProvidersResponse:
    with server.channel() as channel:
        return prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)


def photo_jpeg(folder: Path, width: int, height: int) -> bytes:
    """A detailed JPEG (ffmpeg's testsrc2 pattern) made at test time; nothing large is committed."""
    path = folder / f"photo-{width}x{height}.jpg"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}",
                    "-frames:v", "1", "-q:v", "4", str(path)], check=True, timeout=60)
    return path.read_bytes()


# --- any model id -------------------------------------------------------------------------------


def test_the_articles_dated_claude_id_reaches_anthropic_verbatim(vendor_server, fakes):  # noqa: F811
    prompt = "any model id: the article's claude snapshot"
    image = prism_pb2.Media(mime_type="image/png", data=png(2400, 1200), name="wide.png")
    events, err = generate(vendor_server, request(prompt, ARTICLE_MODEL, media=[image]))
    ok(events, err, ARTICLE_MODEL)
    routed = events[0].routed
    assert routed.model == ARTICLE_MODEL and routed.provider == "anthropic", routed
    assert text_of(events).startswith(f"You said: {prompt}"), text_of(events)
    sent = fakes["anthropic"].requests(prompt)
    assert len(sent) == 1, sent
    assert sent[0]["body"]["model"] == "claude-sonnet-4-20250514", sent[0]["body"]["model"]
    # The claude-* family carries Anthropic's limits: long edge and pixel budget both hold.
    (img,) = sent[0]["body"]["images"]
    assert max(img["width"], img["height"]) <= 1568 and img["width"] * img["height"] <= 1_150_000, img


def test_unlisted_openai_and_gemini_ids_reach_their_vendors_verbatim(vendor_server, fakes):  # noqa: F811
    prompt = "any model id: a newer gpt"
    image = prism_pb2.Media(mime_type="image/png", data=png(3000, 1000), name="wide.png")
    events, err = generate(vendor_server, request(prompt, "openai/gpt-4.1-2025-04-14", media=[image]))
    ok(events, err, "openai/gpt-4.1-2025-04-14")
    assert events[0].routed.model == "openai/gpt-4.1-2025-04-14", events[0].routed
    (sent,) = fakes["openai"].requests(prompt)
    assert sent["body"]["model"] == "gpt-4.1-2025-04-14", sent["body"]["model"]
    (img,) = sent["body"]["images"]  # the gpt-4.1* family takes images, fitted to 2048 × 768
    assert img["width"] <= 2048 and img["height"] <= 768 and img["width"] * img["height"] <= 2048 * 768, img

    prompt = "any model id: a newer gemini"
    events, err = generate(vendor_server, request(prompt, "gemini/gemini-3-pro-preview"))
    ok(events, err, "gemini/gemini-3-pro-preview")
    assert events[0].routed.model == "gemini/gemini-3-pro-preview", events[0].routed
    (sent,) = fakes["gemini"].requests(prompt)
    assert sent["path"].startswith("/v1beta/models/gemini-3-pro-preview:streamGenerateContent"), sent["path"]

    # The id is the client's: characters that mean something in a URL are escaped, not obeyed.
    prompt = "any model id: a gemini id with url characters"
    events, err = generate(vendor_server, request(prompt, "gemini/gemini-x/../../files?key=1#"))
    sent = fakes["gemini"].requests(prompt)
    assert [e["path"].split("?")[0] for e in sent] == ["/v1beta/models/gemini-x%2F..%2F..%2Ffiles%3Fkey%3D1%23:streamGenerateContent"], \
        (sent, err)


def test_an_unlisted_gemini_tts_id_is_a_voice_by_its_family(vendor_server, fakes):  # noqa: F811
    text = "any model id: a newer gemini voice"
    req = prism_pb2.SynthesizeRequest(text=text, format="wav", route=prism_pb2.Route(model="gemini/gemini-2.5-pro-preview-tts"))
    with vendor_server.channel() as channel:
        events = list(prism_pb2_grpc.PrismStub(channel).Synthesize(req, timeout=RPC_TIMEOUT_S))
    assert events[0].routed.model == "gemini/gemini-2.5-pro-preview-tts", events[0]
    assert sum(len(e.audio.data) for e in events if e.WhichOneof("event") == "audio") > 44
    (sent,) = fakes["gemini"].requests(text)
    assert sent["path"] == "/v1beta/models/gemini-2.5-pro-preview-tts:generateContent", sent["path"]


def test_an_id_no_family_matches_is_failed_precondition_naming_what_is_served(vendor_server, fakes):  # noqa: F811
    prompt = "any model id: not a claude"
    events, err = generate(vendor_server, request(prompt, "anthropic/gpt-4o"))
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, (kinds(events), err)
    details = err.details()
    assert "anthropic/gpt-4o" in details and "claude-sonnet-4-5" in details and "claude-*" in details, details
    assert fakes["anthropic"].requests(prompt) == []
    events, err = generate(vendor_server, request(prompt, "mistral/large"))
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, (kinds(events), err)
    assert "loaded providers" in err.details() and "anthropic" in err.details(), err.details()


def test_list_providers_keeps_the_known_rows_and_shows_families_apart(vendor_server):  # noqa: F811
    reply = list_providers(vendor_server)
    anthropic = next(p for p in reply.providers if p.name == "anthropic")
    assert {m.id for m in anthropic.models} == KNOWN_ANTHROPIC, [m.id for m in anthropic.models]
    assert all("*" not in m.id for p in reply.providers for m in p.models)
    assert [f.id for f in anthropic.families] == ["anthropic/claude-*"], anthropic.families
    family = anthropic.families[0]
    assert set(family.inputs) >= {prism_pb2.MODALITY_IMAGE, prism_pb2.MODALITY_PDF} and family.features.tools, family
    # The declared image limits are Anthropic's: 1568 px long edge and ~1.15 MP.
    sonnet = next(m for m in anthropic.models if m.id == "anthropic/claude-sonnet-4-5")
    assert (sonnet.limits.max_image_long_edge, sonnet.limits.max_image_pixels) == (1568, 1_150_000), sonnet.limits
    openai = next(p for p in reply.providers if p.name == "openai")
    gpt4o = next(m for m in openai.models if m.id == "openai/gpt-4o")
    assert (gpt4o.limits.max_image_long_edge, gpt4o.limits.max_image_short_edge) == (2048, 768), gpt4o.limits
    families = [f.id for f in openai.families]
    assert families.index("openai/*transcribe*") < families.index("openai/gpt-4o*") < families.index("openai/gpt-*"), families
    gemini = next(p for p in reply.providers if p.name == "gemini")
    assert [f.id for f in gemini.families] == ["gemini/gemini-*-tts", "gemini/gemini-*"], gemini.families


# --- aliases ------------------------------------------------------------------------------------


def start_with_config(servers: ServerPool, fakes, session_dir: Path, name: str, config: dict):  # noqa: F811
    path = session_dir / f"{name}.json"
    path.write_text(json.dumps(config))
    return servers.start(f"{name}-h2c", ["--config", str(path)], "h2c", env=vendor_env(fakes))


@pytest.fixture(scope="module")
def alias_server(servers: ServerPool, fakes, session_dir: Path):  # noqa: F811
    """Aliases, a family from the openai plugin's config, and a gemini family config it refuses."""
    server = start_with_config(servers, fakes, session_dir, "aliases", {
        "models": {"aliases": {"smart": ARTICLE_MODEL, "backup": "openai/gpt-4o"}},
        "plugins": {"config": {"openai": {"families": {"ft:gpt-4o*": "gpt-4o"}},
                               "gemini": {"families": {"gemini-x": "gemini-2.5-flash"}}}}})
    try:
        yield server
    finally:
        server.stop()


def test_an_alias_routes_to_its_model_and_routed_shows_the_real_one(alias_server, fakes):  # noqa: F811
    prompt = "alias: smart"
    events, err = generate(alias_server, request(prompt, "smart"))
    ok(events, err, "alias smart")
    assert events[0].routed.model == ARTICLE_MODEL, events[0].routed
    (sent,) = fakes["anthropic"].requests(prompt)
    assert sent["body"]["model"] == "claude-sonnet-4-20250514", sent["body"]["model"]


def test_aliases_resolve_in_the_fallbacks(alias_server, fakes):  # noqa: F811
    prompt = "alias fallback overloaded"  # the Anthropic fake answers 529 to every try
    events, err = generate(alias_server, request(prompt, "smart", fallbacks=["backup"]))
    ok(events, err, "alias fallback")
    models = [e.routed.model for e in events if e.WhichOneof("event") == "routed"]
    assert models[0] == ARTICLE_MODEL and models[-1] == "openai/gpt-4o", models
    assert len(fakes["openai"].requests(prompt)) == 1
    assert len(fakes["anthropic"].requests(prompt)) >= 1


@pytest.mark.parametrize("aliases, named", [
    ({"smart": "fast", "fast": "openai/gpt-4o"}, "models.aliases.smart names 'fast', which is itself an alias"),
    ({"smart": "mistral/large"}, "models.aliases.smart names 'mistral/large', but no loaded plugin is provider 'mistral'"),
    ({"smart": "claude"}, "models.aliases.smart must name a model as provider/model"),
])
def test_a_bad_alias_is_a_startup_error_naming_it(servers: ServerPool, fakes, session_dir: Path, aliases, named):  # noqa: F811
    with pytest.raises(ServerStartError) as failure:
        server = start_with_config(servers, fakes, session_dir, "bad-alias", {"models": {"aliases": aliases}})
        server.stop()
    assert named in str(failure.value), str(failure.value)


def test_a_plugin_config_adds_families_and_a_bad_one_fails_that_plugin(alias_server, fakes):  # noqa: F811
    reply = list_providers(alias_server)
    openai = next(p for p in reply.providers if p.name == "openai")
    assert [f.id for f in openai.families][:2] == ["openai/ft:gpt-4o*", "openai/*transcribe*"], openai.families
    prompt = "config family: a fine-tuned gpt-4o"
    image = prism_pb2.Media(mime_type="image/png", data=png(800, 600), name="small.png")
    events, err = generate(alias_server, request(prompt, "openai/ft:gpt-4o-2024-08-06:acme::abc123", media=[image]))
    ok(events, err, "config family")
    (sent,) = fakes["openai"].requests(prompt)
    assert sent["body"]["model"] == "ft:gpt-4o-2024-08-06:acme::abc123" and len(sent["body"]["images"]) == 1, sent["body"]
    gemini = next(p for p in reply.providers if p.plugin == "libprism-plugin-gemini.so")
    assert gemini.state == prism_pb2.PROVIDER_STATE_FAILED, gemini
    assert "families key 'gemini-x' must be a pattern with '*'" in gemini.state_reason, gemini.state_reason


# --- one source of vendor limits ----------------------------------------------------------------


def test_media_fit_for_anthropic_is_what_the_gateway_sends_anthropic(vendor_server, fakes, tmp_path):  # noqa: F811
    photo = photo_jpeg(tmp_path, 5120, 2880)
    fitted_path = tmp_path / "fitted"
    cli = server_binary().parent / "prism"
    done = subprocess.run([str(cli), "media", "fit", str(tmp_path / "photo-5120x2880.jpg"), "--provider", "anthropic",
                           "-o", str(fitted_path), "--json"],
                          env={"PATH": "/usr/bin:/bin", **vendor_env(fakes)}, capture_output=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    fitted = fitted_path.read_bytes()
    assert report["bytes"] == len(fitted), (report, len(fitted))

    prompt = "one source of limits: a 5K photo to anthropic"
    events, err = generate(vendor_server, request(prompt, "anthropic/claude-sonnet-4-5",
                                                  media=[prism_pb2.Media(mime_type="image/jpeg", data=photo, name="photo.jpg")]))
    ok(events, err, "anthropic 5K photo")
    (sent,) = fakes["anthropic"].requests(prompt)
    (img,) = sent["body"]["images"]
    assert (img["width"], img["height"], img["bytes"]) == (report["width"], report["height"], report["bytes"]), (img, report)
    assert img["sha256"] == hashlib.sha256(fitted).hexdigest(), "the CLI and the gateway produced different bytes"
    # Both respect the limits the plugin declares (ListProviders shows them): the pixel budget too.
    limits = next(m.limits for p in list_providers(vendor_server).providers for m in p.models if m.id == "anthropic/claude-sonnet-4-5")
    assert max(img["width"], img["height"]) <= limits.max_image_long_edge, (img, limits)
    assert img["width"] * img["height"] <= limits.max_image_pixels, (img, limits)
    assert img["bytes"] <= limits.max_image_bytes, (img, limits)
    # And the budget is used, not wasted: within 1% of it, aspect ratio kept.
    assert img["width"] * img["height"] > 0.99 * limits.max_image_pixels, img
    assert abs(img["width"] / img["height"] - 5120 / 2880) < 0.01, img


def test_media_fit_names_what_a_provider_serves_for_an_unknown_model(fakes, tmp_path):  # noqa: F811
    photo_jpeg(tmp_path, 640, 360)
    cli = server_binary().parent / "prism"
    done = subprocess.run([str(cli), "media", "fit", str(tmp_path / "photo-640x360.jpg"), "--provider", "anthropic", "--model", "gpt-4o"],
                          env={"PATH": "/usr/bin:/bin", **vendor_env(fakes)}, capture_output=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode != 0
    assert "anthropic does not serve 'gpt-4o'" in done.stderr.decode() and "claude-*" in done.stderr.decode(), done.stderr.decode()
