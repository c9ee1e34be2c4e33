"""The OpenAI plugin's media endpoints inside a running prism-server, against tools/fakes/openai_fake.py,
from the Python grpcio client: Transcribe through /audio/transcriptions (multipart, verbose_json),
Synthesize through /audio/speech (streamed PCM), Generate with image output through
/images/generations, and Chat Completions' input_audio and file (PDF) parts. The fakes and the
server are test_vendors.py's fixtures; every test reads back what the fake received."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import subprocess
import zlib
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from conftest import ServerPool
from harness import RPC_TIMEOUT_S
from test_vendors import Fake, fakes, generate, kinds, of_kind, ok, request, text_of, vendor_server  # noqa: F401 (fixtures)

WHISPER = "openai/whisper-1"
TTS = "openai/tts-1"
IMAGE = "openai/gpt-image-1"
AUDIO_CHAT = "openai/gpt-4o-audio-preview"
CHAT = "openai/gpt-4o"

# What the fake "hears" (tools/fakes/openai_media.py): two segments over the audio's duration.
FAKE_SEGMENTS = ("Hello from the fake transcriber.", "The second segment ends here.")
FAKE_LOGPROBS = (-0.25, -0.4)


# --- media made here ----------------------------------------------------------------------------


def wav(seconds: float, rate: int = 16000, hz: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV of a sine tone."""
    pcm = b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(int(seconds * rate)))
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", len(pcm)) + pcm)


def pdf(pages: list[str]) -> bytes:
    """A small valid PDF, one line of Helvetica text per page, with a correct xref table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = b"BT /F1 24 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
                       % len(objects))
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(pages))
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def png_facts(data: bytes) -> tuple[int, int]:
    """(width, height) of an 8-bit RGB PNG, after checking every chunk's CRC and inflating its pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    i, idat, size = 8, b"", None
    while i < len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + length]
        assert struct.unpack(">I", data[i + 8 + length:i + 12 + length])[0] == zlib.crc32(kind + body), f"bad CRC in {kind}"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x02", "expected 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        i += 12 + length
    width, height = size
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width), "pixel data does not match the header"
    return width, height


def wav_facts(data: bytes) -> tuple[int, int, int, bytes]:
    """(rate, channels, bits, samples) of a PCM WAV; a streaming header's unknown size means "to the end"."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    i, fmt = 12, None
    while i + 8 <= len(data):
        kind, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        if kind == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[i + 8:i + 24])
            assert tag == 1, f"not PCM: format tag {tag}"
            fmt = (rate, channels, bits)
        elif kind == b"data":
            assert fmt is not None, "data before fmt"
            end = len(data) if size == 0xFFFFFFFF else i + 8 + size
            assert end == len(data), f"data chunk says {size} bytes, the file has {len(data) - i - 8}"
            return (*fmt, data[i + 8:end])
        i += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


# --- helpers ------------------------------------------------------------------------------------


def latest(fake: Fake, path: str, **match) -> dict:
    """The last request the fake logged on `path` whose fields equal `match`."""
    found = [e for e in fake.entries() if e.get("path") == path and all(e.get(k) == v for k, v in match.items())]
    assert found, f"the fake saw no {path} request matching {match}; it saw {[e.get('path') for e in fake.entries()]}"
    return found[-1]


def transcribe(server, audio: bytes, *, language: str = "", words: bool = False, model: str = WHISPER):
    config = prism_pb2.TranscribeConfig(language=language, word_timestamps=words, route=prism_pb2.Route(model=model))
    messages = [prism_pb2.TranscribeRequest(config=config)]
    messages += [prism_pb2.TranscribeRequest(audio=audio[i:i + 16384]) for i in range(0, len(audio), 16384)]
    events = []
    with server.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Transcribe(iter(messages), timeout=RPC_TIMEOUT_S)
        try:
            events.extend(call)
        except grpc.RpcError as err:
            return events, err
    return events, None


def synthesize(server, text: str, **fields):
    events = []
    with server.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Synthesize(
            prism_pb2.SynthesizeRequest(text=text, route=prism_pb2.Route(model=fields.pop("model", TTS)), **fields), timeout=RPC_TIMEOUT_S)
        try:
            events.extend(call)
        except grpc.RpcError as err:
            return events, err
    return events, None


def image_request(prompt: str, model: str = IMAGE, provider: str = "") -> prism_pb2.GenerateRequest:
    req = request(prompt, model)
    req.route.provider = provider
    req.outputs.append(prism_pb2.MODALITY_IMAGE)
    return req


# --- the tests ----------------------------------------------------------------------------------


def test_the_media_models_are_listed_with_their_capabilities(vendor_server):
    with vendor_server.channel() as channel:
        reply = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
    models = {m.id: m for p in reply.providers for m in p.models}
    whisper = models[WHISPER]
    # ListProviders shows text among every model's inputs.
    assert list(whisper.operations) == [prism_pb2.OPERATION_TRANSCRIBE], whisper
    assert set(whisper.inputs) == {prism_pb2.MODALITY_TEXT, prism_pb2.MODALITY_AUDIO}, whisper
    assert whisper.limits.max_audio_bytes == 26_214_400 and "audio/wav" in whisper.limits.audio_mime_types, whisper.limits
    for voice in (TTS, "openai/gpt-4o-mini-tts"):
        assert list(models[voice].operations) == [prism_pb2.OPERATION_SYNTHESIZE], models[voice]
        assert list(models[voice].outputs) == [prism_pb2.MODALITY_AUDIO], models[voice]
    assert list(models[IMAGE].operations) == [prism_pb2.OPERATION_IMAGE_GENERATE], models[IMAGE]
    assert list(models[IMAGE].outputs) == [prism_pb2.MODALITY_IMAGE], models[IMAGE]
    assert prism_pb2.MODALITY_AUDIO in models[AUDIO_CHAT].inputs, models[AUDIO_CHAT]
    assert set(models[AUDIO_CHAT].limits.audio_mime_types) == {"audio/wav", "audio/mpeg"}, models[AUDIO_CHAT].limits
    assert prism_pb2.MODALITY_PDF in models[CHAT].inputs, models[CHAT]


def test_transcribe_with_words_streams_segments_and_the_transcript(vendor_server, fakes):
    audio = wav(2.0)
    events, err = transcribe(vendor_server, audio, language="en-US", words=True)
    assert err is None, f"{err.code().name}: {err.details()}"
    assert events[0].WhichOneof("event") == "routed" and events[0].routed.model == WHISPER, events[0]
    segments = [e.segment for e in events if e.WhichOneof("event") == "segment"]
    assert [(s.start_seconds, s.end_seconds, s.text) for s in segments] == [(0.0, 1.0, FAKE_SEGMENTS[0]), (1.0, 2.0, FAKE_SEGMENTS[1])]
    for segment, logprob in zip(segments, FAKE_LOGPROBS):
        assert segment.confidence == pytest.approx(math.exp(logprob), abs=1e-4), segment
        assert [w.text for w in segment.words] == [w.strip(".") for w in FAKE_SEGMENTS[segments.index(segment)].split()], segment.words
        assert all(segment.start_seconds <= w.start_seconds < w.end_seconds <= segment.end_seconds for w in segment.words), segment.words
    final = events[-1]
    assert final.WhichOneof("event") == "final", kinds(events)
    assert final.final.text == " ".join(FAKE_SEGMENTS), final.final

    sent = latest(fakes["openai"], "/v1/audio/transcriptions", granularities=["segment", "word"])
    assert sent["auth"] == "ok" and sent["content_type"].startswith("multipart/form-data; boundary="), sent
    assert sent["model"] == "whisper-1" and sent["response_format"] == "verbose_json" and sent["language"] == "en", sent
    assert len(sent["files"]) == 1, sent["files"]
    file = sent["files"][0]
    assert file["field"] == "file" and file["filename"].endswith(".wav") and file["content_type"] == "audio/wav", file
    assert file["wav_rate"] == 16000 and file["wav_channels"] == 1 and file["size"] == len(audio), file


def test_transcribe_without_words_asks_for_segments_only(vendor_server, fakes):
    events, err = transcribe(vendor_server, wav(1.0))
    assert err is None, f"{err.code().name}: {err.details()}"
    segments = [e.segment for e in events if e.WhichOneof("event") == "segment"]
    assert len(segments) == 2 and all(not s.words for s in segments), segments
    assert segments[-1].end_seconds == pytest.approx(1.0), segments
    sent = latest(fakes["openai"], "/v1/audio/transcriptions")
    assert sent["granularities"] == ["segment"] and "language" not in sent["fields"], sent


def test_synthesize_streams_the_vendor_pcm_as_a_24khz_wav(vendor_server, fakes):
    text = "Speak this sentence for the interop test"
    events, err = synthesize(vendor_server, text, voice="nova", speed=1.25, format="wav")
    assert err is None, f"{err.code().name}: {err.details()}"
    assert events[0].WhichOneof("event") == "routed" and events[0].routed.model == TTS, events[0]
    chunks = [e.audio for e in events if e.WhichOneof("event") == "audio"]
    assert all(c.mime_type == "audio/wav" for c in chunks), {c.mime_type for c in chunks}
    sent = latest(fakes["openai"], "/v1/audio/speech", text=text)
    assert sent["pieces"] >= 3, sent
    assert len([c for c in chunks if c.data]) >= 3, "the speech should arrive in several chunks as it streams"
    rate, channels, bits, samples = wav_facts(b"".join(c.data for c in chunks))
    assert (rate, channels, bits) == (24000, 1, 16)
    assert len(samples) == sent["sent_bytes"] and hashlib.sha256(samples).hexdigest() == sent["sent_sha256"], \
        f"{len(samples)} bytes of samples, the fake sent {sent['sent_bytes']}"
    assert sent["model"] == "tts-1" and sent["voice"] == "nova" and sent["speed"] == 1.25 and sent["response_format"] == "pcm", sent
    assert sent["keys"] == ["input", "model", "response_format", "speed", "voice"], sent["keys"]


def test_synthesize_at_another_rate_keeps_the_duration_and_maps_an_espeak_voice(vendor_server, fakes):
    text = "A second sentence resampled by the gateway"
    events, err = synthesize(vendor_server, text, voice="en-us", format="wav", sample_rate=16000)
    assert err is None, f"{err.code().name}: {err.details()}"
    chunks = [e.audio for e in events if e.WhichOneof("event") == "audio"]
    rate, channels, bits, samples = wav_facts(b"".join(c.data for c in chunks))
    assert (rate, channels, bits) == (16000, 1, 16)
    sent = latest(fakes["openai"], "/v1/audio/speech", text=text)
    assert sent["voice"] == "alloy" and sent["speed"] == 1, sent
    assert len(samples) / 2 / 16000 == pytest.approx(sent["sent_bytes"] / 2 / 24000, abs=0.01)


def test_synthesize_over_the_vendor_input_limit_is_resource_exhausted(vendor_server, fakes):
    text = "word " * 1000  # 5000 characters, over openai's 4096
    events, err = synthesize(vendor_server, text, format="pcm")
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err and f"{err.code().name}: {err.details()}"
    assert "4096" in err.details() and "openai" in err.details(), err.details()
    assert not [e for e in fakes["openai"].entries() if e.get("text") == text], "the over-long text reached the vendor"


def test_vendor_413_on_speech_is_resource_exhausted_naming_the_provider(vendor_server, fakes):
    text = "status-413 speak"
    events, err = synthesize(vendor_server, text, format="pcm")
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err and f"{err.code().name}: {err.details()}"
    assert "openai" in err.details() and "413" in err.details(), err.details()
    assert not [e for e in events if e.WhichOneof("event") == "audio"], "no audio after a refusal"
    assert len([e for e in fakes["openai"].entries() if e.get("text") == text]) == 1, "a 413 is not retried"


def test_generate_with_image_output_returns_the_generated_png(vendor_server, fakes):
    prompt = "a small gradient for the interop test"
    events, err = generate(vendor_server, image_request(prompt))
    ok(events, err, "image generation")
    assert kinds(events)[0] == "routed" and events[0].routed.model == IMAGE, events[0]
    media = of_kind(events, "media")
    assert len(media) == 1 and media[0].mime_type == "image/png" and media[0].last, [(m.mime_type, m.last, len(m.data)) for m in media]
    assert png_facts(media[0].data) == (16, 16)
    made = [e for e in fakes["openai"].entries() if e.get("event") == "image" and e.get("text") == prompt]
    assert len(made) == 1 and hashlib.sha256(media[0].data).hexdigest() == made[0]["png_sha256"], made
    usage = of_kind(events, "usage")
    assert len(usage) == 1 and usage[0].input_tokens == len(prompt.split()) and usage[0].output_tokens == 272, usage
    sent = latest(fakes["openai"], "/v1/images/generations", text=prompt)
    assert sent["model"] == "gpt-image-1" and sent["n"] == 1 and sent["size"] == "1024x1024", sent
    assert sent["keys"] == ["model", "n", "prompt", "size"], sent["keys"]


def test_image_output_without_a_named_model_is_planned_to_the_image_generator(vendor_server, fakes):
    prompt = "any model that draws will do"
    events, err = generate(vendor_server, image_request(prompt, model=""))
    ok(events, err, "planned image generation")
    assert events[0].routed.model == IMAGE, events[0].routed
    assert [m.mime_type for m in of_kind(events, "media")] == ["image/png"], kinds(events)
    assert latest(fakes["openai"], "/v1/images/generations", text=prompt)["model"] == "gpt-image-1"


def test_image_output_without_an_image_generator_is_refused_naming_it(vendor_server):
    events, err = generate(vendor_server, image_request("draw me a cat", model="", provider="anthropic"))
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, err and f"{err.code().name}: {err.details()}"
    assert "image output" in err.details(), err.details()
    events, err = generate(vendor_server, image_request("draw me a dog", model=CHAT))
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, err and f"{err.code().name}: {err.details()}"
    assert "image output" in err.details() and CHAT in err.details(), err.details()


def test_chat_audio_part_is_sent_as_input_audio(vendor_server, fakes):
    prompt = "what do you hear in this clip"
    clip = prism_pb2.Media(mime_type="audio/wav", data=wav(1.0), name="clip.wav")
    events, err = generate(vendor_server, request(prompt, AUDIO_CHAT, media=[clip]))
    ok(events, err, "input_audio")
    sent = fakes["openai"].requests(prompt)
    assert len(sent) == 1, sent
    audio = sent[0]["body"]["audio"]
    assert len(audio) == 1 and audio[0]["format"] == "wav" and audio[0]["riff"] and not audio[0]["newlines"], audio
    assert audio[0]["bytes"] == len(clip.data), audio
    assert f"[audio wav {len(clip.data)} bytes]" in text_of(events), text_of(events)


def test_chat_mp3_is_sent_as_mp3_input_audio(vendor_server, fakes, tmp_path):
    source, mp3_path = tmp_path / "tone.wav", tmp_path / "tone.mp3"
    source.write_bytes(wav(1.0, rate=22050))
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-b:a", "64k", str(mp3_path)], check=True)
    mp3 = mp3_path.read_bytes()
    prompt = "what is in this mp3"
    events, err = generate(vendor_server, request(prompt, AUDIO_CHAT, media=[prism_pb2.Media(mime_type="audio/mpeg", data=mp3, name="tone.mp3")]))
    ok(events, err, "mp3 input_audio")
    assert not events[0].routed.adaptations, f"an accepted MP3 is not converted: {list(events[0].routed.adaptations)}"
    audio = fakes["openai"].requests(prompt)[0]["body"]["audio"]
    assert audio == [{"format": "mp3", "bytes": len(mp3), "newlines": False, "riff": False, "wav": None}], audio


def test_chat_pdf_is_sent_as_a_file_part(vendor_server, fakes):
    prompt = "summarise this report"
    document = prism_pb2.Media(mime_type="application/pdf", data=pdf(["First page", "Second page"]), name="report.pdf")
    events, err = generate(vendor_server, request(prompt, CHAT, media=[document]))
    ok(events, err, "pdf file part")
    assert not events[0].routed.adaptations, events[0].routed
    body = fakes["openai"].requests(prompt)[0]["body"]
    assert body["files"] == [{"filename": "report.pdf", "header": "data:application/pdf;base64", "bytes": len(document.data),
                              "newlines": False, "pdf": True}], body["files"]
    assert body["images"] == [], body["images"]


def test_chat_pdf_becomes_page_images_for_a_model_without_pdf(servers: ServerPool, session_dir: Path):
    """A keyless local server whose config says it can see, but not read PDFs: pages are rasterized."""
    fake = Fake("openai_fake.py", "", session_dir / "openai-local-vision").start()
    config = session_dir / "openai-local-vision" / "config.json"
    config.write_text(json.dumps({"plugins": {"config": {"openai": {"vision": True}}}}))
    server = None
    try:
        server = servers.start("openai-local-vision-h2c", ["--config", str(config)], "h2c", env={
            "OPENAI_API_KEY": "", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1", "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        prompt = "read this two page report"
        document = prism_pb2.Media(mime_type="application/pdf", data=pdf(["First page", "Second page"]), name="report.pdf")
        events, err = generate(server, request(prompt, "openai/local", media=[document]))
        ok(events, err, "pdf as pages")
        assert any("pdf" in a and "2 page images" in a for a in events[0].routed.adaptations), events[0].routed
        # The page texts join the prompt in the last user message, so match on its start.
        sent = [e for e in fake.entries() if e.get("path") == "/v1/chat/completions" and e["text"].startswith(prompt)]
        assert len(sent) == 1, fake.entries()
        body = sent[0]["body"]
        assert body["files"] == [], body["files"]
        assert len(body["images"]) == 2 and all(i["width"] > 0 and not i["newlines"] for i in body["images"]), body["images"]
        texts = [p["text"] for m in body["messages"] if isinstance(m.get("content"), list) for p in m["content"] if p["type"] == "text"]
        assert any("First page" in t for t in texts) and any("Second page" in t for t in texts), texts
    finally:
        if server is not None:
            server.stop()
        fake.stop()
