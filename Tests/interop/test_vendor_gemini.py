"""The Gemini plugin (and the Anthropic pieces of issue 6) inside a running prism-server, against the
fake vendors of tools/fakes/, from the Python grpcio client: inline media of every kind, the Files API
for media over the inline limit, responseSchema from a client's JSON Schema, Gemini TTS through
Synthesize, RetryInfo honoured; Anthropic's system prompt and PDF `document` blocks, and a PDF turned
into page images for a model without PDF input. The fakes and the shared server come from
test_vendors; a second server with a small inline limit is started here."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import time
import urllib.error
import urllib.request
import wave
from io import BytesIO
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool
from harness import RPC_TIMEOUT_S
from test_generate import pdf
from test_vendors import (ANTHROPIC_MODEL, GEMINI_KEY, GEMINI_MODEL, fakes, generate, kinds,  # noqa: F401
                          of_kind, ok, png, request, text_of, vendor_server)

GEMINI_TTS_MODEL = "gemini/gemini-2.5-flash-preview-tts"
# Small enough that a second of 16 kHz WAV (32 KB, ~43 KB as base64) does not fit inline.
SMALL_INLINE_LIMIT = 20_000


# --- media made at test time --------------------------------------------------------------------


def wav(seconds: float, rate: int = 16000) -> bytes:
    """A mono 16-bit WAV of a 330 Hz tone."""
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 330 * i / rate))) for i in range(int(rate * seconds)))
    out = BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def mp4(folder: Path) -> bytes:
    """A one-second H.264 + AAC MP4 made by ffmpeg from its lavfi test sources."""
    path = folder / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(path)],
                   check=True, timeout=60)
    return path.read_bytes()


def medium(mime: str, data: bytes, name: str) -> prism_pb2.Media:
    return prism_pb2.Media(mime_type=mime, data=data, name=name)


# --- a server whose gemini plugin has a small inline limit --------------------------------------


@pytest.fixture(scope="module")
def small_inline_server(servers: ServerPool, fakes, session_dir: Path):  # noqa: F811
    """prism-server whose gemini plugin uploads media over SMALL_INLINE_LIMIT, polls quickly, and
    sends response schemas as responseJsonSchema: the plugin config a user writes in --config."""
    config = session_dir / "gemini-small-inline.json"
    config.write_text(json.dumps({"plugins": {"config": {"gemini": {
        "inline_limit_bytes": SMALL_INLINE_LIMIT, "file_poll_interval_ms": 20, "response_schema_field": "responseJsonSchema"}}}}))
    env = {
        "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_BASE_URL": f"http://127.0.0.1:{fakes['gemini'].port}/v1beta",
        "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "",
        "HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "", "ALL_PROXY": "", "all_proxy": "",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }
    server = servers.start("gemini-small-inline-h2c", ["--config", str(config)], "h2c", env=env)
    try:
        yield server
    finally:
        server.stop()


# --- Gemini: inline media and the Files API ------------------------------------------------------


def test_gemini_image_audio_video_and_pdf_go_inline_with_their_types(vendor_server, fakes, tmp_path):  # noqa: F811
    prompt = "describe these four media"
    sent_media = [medium("image/png", png(320, 200), "chart.png"), medium("audio/wav", wav(0.5), "tone.wav"),
                  medium("video/mp4", mp4(tmp_path), "clip.mp4"), medium("application/pdf", pdf(2), "report.pdf")]
    events, err = generate(vendor_server, request(prompt, GEMINI_MODEL, media=sent_media))
    ok(events, err, "gemini inline media")
    assert list(events[0].routed.adaptations) == [], f"gemini takes all four natively: {list(events[0].routed.adaptations)}"

    sent = fakes["gemini"].requests(prompt)
    assert len(sent) == 1, sent
    got = sent[0]["body"]["media"]
    assert [m["mime_type"] for m in got] == ["image/png", "audio/wav", "video/mp4", "application/pdf"], got
    assert all(m["newlines"] is False for m in got), f"base64 with line breaks: {got}"
    assert (got[0]["width"], got[0]["height"]) == (320, 200), got[0]
    assert [m["bytes"] for m in got[1:]] == [len(m.data) for m in sent_media[1:]], "audio, video and PDF must arrive byte for byte"
    assert sent[0]["body"]["files"] == [], "nothing needed the Files API"
    assert "[image/png 320x200]" in text_of(events) and f"[video/mp4 {len(sent_media[2].data)} bytes]" in text_of(events)


def test_gemini_medium_over_the_inline_limit_goes_through_the_files_api(small_inline_server, fakes):
    prompt = "listen to this long recording"
    recording = wav(1.0)
    assert len(recording) > SMALL_INLINE_LIMIT
    picture = png(40, 30)
    events, err = generate(small_inline_server, request(prompt, GEMINI_MODEL, media=[
        medium("audio/wav", recording, "long-recording.wav"), medium("image/png", picture, "small.png")]))
    ok(events, err, "gemini files api")

    log = fakes["gemini"].entries()
    starts = [i for i, e in enumerate(log) if e.get("kind") == "upload-start" and e.get("display_name") == "long-recording.wav"]
    assert len(starts) == 1, f"one resumable start for the recording: {[e for e in log if e.get('kind')]}"
    start = log[starts[0]]
    assert start["auth"] == "ok", start
    assert start["headers"] == {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                                "X-Goog-Upload-Header-Content-Length": str(len(recording)),
                                "X-Goog-Upload-Header-Content-Type": "audio/wav"}, start
    uploads = [i for i, e in enumerate(log) if e.get("kind") == "upload" and i > starts[0]]
    assert uploads, "no upload after the start"
    upload = log[uploads[0]]
    file_id = upload["file"]
    assert upload["problem"] is None and upload["bytes"] == len(recording), upload
    assert upload["command"] == "upload, finalize" and upload["offset"] == "0", upload
    polls = [i for i, e in enumerate(log) if e.get("kind") == "poll" and e.get("file") == file_id]
    assert len(polls) >= 2 and polls[0] > uploads[0], f"polls of {file_id}: {[log[i] for i in polls]}"
    assert [log[i]["state"] for i in polls][-1] == "ACTIVE", [log[i] for i in polls]
    assert all(log[i]["state"] == "PROCESSING" for i in polls[:-1]), "the plugin polled on after ACTIVE"

    generated = [i for i, e in enumerate(log) if e.get("text") == prompt and "body" in e]
    assert len(generated) == 1 and generated[0] > polls[-1], "generateContent must come after the file is ACTIVE"
    body = log[generated[0]]["body"]
    assert [(f["file"], f["mime_type"], f["state"], f["problem"]) for f in body["files"]] == [(file_id, "audio/wav", "ACTIVE", None)], body["files"]
    assert [(m["mime_type"], m["width"], m["height"]) for m in body["media"]] == [("image/png", 40, 30)], "the small image stays inline"
    assert f"[file audio/wav {len(recording)} bytes]" in text_of(events), text_of(events)


def test_gemini_deadline_ends_the_wait_for_a_file_that_stays_processing(small_inline_server, fakes):
    prompt = "listen to the stuck recording"
    req = request(prompt, GEMINI_MODEL, media=[medium("audio/wav", wav(1.0), "stuck-recording.wav")])
    with small_inline_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as ended:
            list(prism_pb2_grpc.PrismStub(channel).Generate(req, timeout=1.5))
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (ended.value.code(), ended.value.details())

    log = fakes["gemini"].entries()
    started = [e for e in log if e.get("kind") == "upload-start" and e.get("display_name") == "stuck-recording.wav"]
    assert len(started) == 1 and started[0]["file"], started

    def polls():
        return [e for e in fakes["gemini"].entries() if e.get("kind") == "poll" and e.get("file") == started[0]["file"]]
    time.sleep(0.3)  # a poll already on the wire when the deadline passed may still land
    before = len(polls())
    assert before >= 1 and all(e["state"] == "PROCESSING" for e in polls()), polls()
    time.sleep(0.5)  # 25 poll intervals of the plugin's config: any poll left running would show
    assert len(polls()) == before, "the plugin kept polling after the deadline"
    assert fakes["gemini"].requests(prompt) == [], "nothing was generated"


# --- Gemini: response schemas --------------------------------------------------------------------

INVOICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "customer": {"type": "string", "description": "who pays"},
        "kind": {"const": "invoice"},
        "total": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "lines": {"type": "array", "uniqueItems": True, "items": {"$ref": "#/$defs/line"}},
    },
    "required": ["customer", "kind", "total", "lines"],
    "$defs": {"line": {"type": "object", "additionalProperties": False,
                       "properties": {"item": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, "required": ["item"]}},
}


def test_gemini_response_schema_is_the_openapi_subset_and_the_answer_is_json(vendor_server, fakes):  # noqa: F811
    prompt = "extract the invoice as json"
    req = request(prompt, GEMINI_MODEL)
    req.response_schema_json = json.dumps(INVOICE_SCHEMA)
    events, err = generate(vendor_server, req)
    ok(events, err, "gemini response schema")

    sent = fakes["gemini"].requests(prompt)
    assert len(sent) == 1, sent
    config = sent[0]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json", config
    assert "responseJsonSchema" not in config, config
    assert config["responseSchema"] == {
        "type": "OBJECT",
        "properties": {
            "customer": {"type": "STRING", "description": "who pays"},
            "kind": {"type": "STRING", "enum": ["invoice"]},
            "total": {"type": "NUMBER", "nullable": True},
            "lines": {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {"item": {"type": "STRING"},
                                                                                 "qty": {"type": "INTEGER", "minimum": 1}},
                                                 "required": ["item"]}},
        },
        "required": ["customer", "kind", "total", "lines"],
    }, json.dumps(config["responseSchema"])
    answers = [e["answer"] for e in fakes["gemini"].entries() if e.get("event") == "json-answer" and e.get("text") == prompt]
    assert len(answers) == 1, answers
    answer = json.loads(text_of(events))
    assert answer == json.loads(answers[0]), f"the client got {text_of(events)!r}, the fake said {answers[0]!r}"
    assert answer["kind"] == "invoice" and isinstance(answer["lines"], list) and isinstance(answer["lines"][0]["qty"], int), answer


def test_gemini_response_schema_conversion_of_unions_refs_and_unsupported_keywords(vendor_server, fakes):  # noqa: F811
    prompt = "extract the ticket as json"
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": ["string", "integer"]},
            "note": {"anyOf": [{"$ref": "#/definitions/text"}, {"type": "null"}]},
            "status": {"oneOf": [{"const": "open"}, {"const": "closed"}]},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email", "maxLength": 80},
            "address": {"allOf": [{"$ref": "#/definitions/place"},
                                  {"properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["zip"]}]},
            "score": {"type": "number", "multipleOf": 0.5, "maximum": 10},
        },
        "definitions": {"text": {"type": "string", "minLength": 1},
                        "place": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
    req = request(prompt, GEMINI_MODEL)
    req.response_schema_json = json.dumps(schema)
    events, err = generate(vendor_server, req)
    ok(events, err, "gemini schema conversion")
    sent = fakes["gemini"].requests(prompt)[0]["body"]["generationConfig"]["responseSchema"]
    assert sent == {"type": "OBJECT", "properties": {
        "id": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
        "note": {"type": "STRING", "minLength": 1, "nullable": True},
        "status": {"anyOf": [{"type": "STRING", "enum": ["open"]}, {"type": "STRING", "enum": ["closed"]}]},
        "when": {"type": "STRING", "format": "date-time"},
        "email": {"type": "STRING", "maxLength": 80},
        "address": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "zip": {"type": "STRING", "pattern": "^[0-9]{5}$"}},
                    "required": ["city", "zip"]},
        "score": {"type": "NUMBER", "maximum": 10},
    }}, json.dumps(sent)
    assert json.loads(text_of(events))["status"] == "open", text_of(events)


def test_gemini_fake_refuses_json_schema_keywords_in_response_schema(fakes):  # noqa: F811
    """The fake is as strict as Gemini, so the conversion above is checked, not assumed."""
    body = {"contents": [{"role": "user", "parts": [{"text": "strictness check"}]}],
            "generationConfig": {"responseMimeType": "application/json",
                                 "responseSchema": {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}}}
    http = urllib.request.Request(f"http://127.0.0.1:{fakes['gemini'].port}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                                  data=json.dumps(body).encode(), method="POST",
                                  headers={"content-type": "application/json", "x-goog-api-key": GEMINI_KEY})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(http, timeout=10)
    error = json.loads(refused.value.read())["error"]
    assert refused.value.code == 400 and error["status"] == "INVALID_ARGUMENT", error
    assert 'Unknown name "additionalProperties"' in error["message"], error


def test_gemini_schema_without_an_openapi_form_is_invalid_argument_before_any_call(vendor_server, fakes):  # noqa: F811
    prompt = "a free-form map please"
    req = request(prompt, GEMINI_MODEL)
    req.response_schema_json = json.dumps({"type": "object", "additionalProperties": {"type": "number"}})
    events, err = generate(vendor_server, req)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err and err.code(), kinds(events))
    assert "response_schema_json" in err.details() and "responseJsonSchema" in err.details(), err.details()
    assert fakes["gemini"].requests(prompt) == [], "nothing is sent that Gemini would refuse"


def test_gemini_response_json_schema_when_configured_is_the_schema_as_given(small_inline_server, fakes):
    prompt = "extract the invoice verbatim schema"
    req = request(prompt, GEMINI_MODEL)
    req.response_schema_json = json.dumps(INVOICE_SCHEMA)
    events, err = generate(small_inline_server, req)
    ok(events, err, "gemini responseJsonSchema")
    config = fakes["gemini"].requests(prompt)[0]["body"]["generationConfig"]
    assert config["responseJsonSchema"] == INVOICE_SCHEMA and "responseSchema" not in config, config
    assert json.loads(text_of(events))["kind"] == "invoice", text_of(events)


# --- Gemini: speech ------------------------------------------------------------------------------


def synthesize(server, text: str, voice: str = ""):
    """The audio bytes of one Synthesize (WAV at the engine's rate), and its routed event."""
    req = prism_pb2.SynthesizeRequest(text=text, voice=voice, format="wav", route=prism_pb2.Route(model=GEMINI_TTS_MODEL))
    with server.channel() as channel:
        events = list(prism_pb2_grpc.PrismStub(channel).Synthesize(req, timeout=RPC_TIMEOUT_S))
    assert events and events[0].WhichOneof("event") == "routed", [e.WhichOneof("event") for e in events]
    return b"".join(e.audio.data for e in events if e.WhichOneof("event") == "audio"), events[0].routed


def test_gemini_tts_synthesizes_24khz_wav_with_the_fakes_samples(vendor_server, fakes):  # noqa: F811
    text = "the gateway speaks through gemini"
    audio, routed = synthesize(vendor_server, text)
    assert routed.model == GEMINI_TTS_MODEL, routed
    assert audio[:4] == b"RIFF" and audio[8:16] == b"WAVEfmt ", audio[:16]
    audio_format, channels, rate, _, _, bits = struct.unpack("<HHIIHH", audio[20:36])
    assert (audio_format, channels, rate, bits) == (1, 1, 24000, 16), (audio_format, channels, rate, bits)
    assert audio[36:40] == b"data", audio[36:44]
    spoken = [e for e in fakes["gemini"].entries() if e.get("event") == "speech" and e.get("text") == text]
    assert len(spoken) == 1 and spoken[0]["voice"] == "Kore", spoken
    assert (len(audio) - 44) // 2 == spoken[0]["samples"], f"{(len(audio) - 44) // 2} samples, the fake sent {spoken[0]['samples']}"
    sent = fakes["gemini"].requests(text)
    assert sent[0]["path"] == "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent", sent[0]["path"]
    assert sent[0]["body"]["generationConfig"]["responseModalities"] == ["AUDIO"], sent[0]["body"]


def test_gemini_tts_voice_is_passed_and_an_unknown_one_is_invalid_argument(vendor_server, fakes):  # noqa: F811
    synthesize(vendor_server, "a voice named puck", voice="Puck")
    spoken = [e for e in fakes["gemini"].entries() if e.get("event") == "speech" and e.get("text") == "a voice named puck"]
    assert [e["voice"] for e in spoken] == ["Puck"], spoken
    with pytest.raises(grpc.RpcError) as refused:
        synthesize(vendor_server, "a voice gemini lacks", voice="robot")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert "robot" in refused.value.details(), refused.value.details()


# --- Gemini: RetryInfo ---------------------------------------------------------------------------


def test_gemini_429_with_retry_info_is_retried_then_succeeds(vendor_server, fakes):  # noqa: F811
    prompt = "once-429 retry-1.5s quota test"
    events, err = generate(vendor_server, request(prompt, GEMINI_MODEL))
    ok(events, err, "gemini 429 then success")
    assert [(r.model, r.attempt) for r in of_kind(events, "routed")] == [(GEMINI_MODEL, 1), (GEMINI_MODEL, 2)], kinds(events)
    assert text_of(events) == f"You said: {prompt}"
    assert len(fakes["gemini"].requests(prompt)) == 2, "one 429, then one success"


def test_gemini_retry_delay_reaches_the_client_as_retry_after_ms(vendor_server, fakes):  # noqa: F811
    prompt = "always-429 retry-1.5s quota test"
    events, err = generate(vendor_server, request(prompt, GEMINI_MODEL))
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE, (err and err.code(), kinds(events))
    trailers = dict(err.trailing_metadata() or ())
    assert trailers.get("retry-after-ms") == "1500", f"RetryInfo 1.5s should be 1500 ms: {trailers}"
    assert len(fakes["gemini"].requests(prompt)) == 2, "tried twice (the host's attempts per model)"


# --- Anthropic: system prompt and PDF; a PDF for a model without PDF input -----------------------


def test_anthropic_system_prompt_arrives_as_system(vendor_server, fakes):  # noqa: F811
    prompt = "hello with a system prompt"
    req = request(prompt, ANTHROPIC_MODEL)
    req.system = "You answer in one short sentence."
    events, err = generate(vendor_server, req)
    ok(events, err, "anthropic system")
    body = fakes["anthropic"].requests(prompt)[0]["body"]
    assert body["system"] == "You answer in one short sentence.", body
    assert all(m["role"] in ("user", "assistant") for m in body["messages"]), "the system prompt is not a message"


def test_anthropic_pdf_is_a_base64_document_block(vendor_server, fakes):  # noqa: F811
    prompt = "summarise the attached report"
    document = pdf(3)
    events, err = generate(vendor_server, request(prompt, ANTHROPIC_MODEL, media=[medium("application/pdf", document, "report.pdf")]))
    ok(events, err, "anthropic pdf")
    assert list(events[0].routed.adaptations) == [], "anthropic reads PDFs natively"
    body = fakes["anthropic"].requests(prompt)[0]["body"]
    assert body["documents"] == [{"media_type": "application/pdf", "bytes": len(document), "newlines": False, "title": "report.pdf"}], body["documents"]
    assert body["images"] == [], body["images"]
    blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    assert [b["source"]["type"] for b in blocks if b["type"] == "document"] == ["base64"], blocks
    assert f"[document {len(document)} bytes]" in text_of(events), text_of(events)
