"""Transcribe streams segments while the audio is still being uploaded (local/pocketsphinx reads it
through the plugin ABI's read_input), and Synthesize's compressed formats and concurrent calls, from
the Python grpcio client against the local engine plugins `swift build` puts beside prism-server."""

from __future__ import annotations

import random
import struct
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from harness import RPC_TIMEOUT_S

TEST_DATA = Path("/usr/share/pocketsphinx/test/data")
RATE = 16000
# How long the sender waits for the first segment before giving up and sending the rest anyway
# (then the test fails on its assertion instead of hanging).
FIRST_SEGMENT_WAIT_S = 60.0


@pytest.fixture(scope="module")
def server(servers):
    """prism-server (h2c) with the plugins beside it, local/pocketsphinx and local/espeak among them."""
    return servers.get("plain", "h2c")


@pytest.fixture
def prism(server):
    with server.channel() as channel:
        yield prism_pb2_grpc.PrismStub(channel)


def quiet(seconds: float, seed: int) -> bytes:
    """Low-level noise (as a room sounds between sentences), s16le at 16 kHz."""
    rng = random.Random(seed)
    return struct.pack(f"<{int(seconds * RATE)}h", *(rng.randint(-30, 30) for _ in range(int(seconds * RATE))))


def chunks(data: bytes, size: int = 8192):
    for at in range(0, len(data), size):
        yield prism_pb2.TranscribeRequest(audio=data[at:at + size])


def decoded_seconds(data: bytes, what: str) -> float:
    """Seconds of sound ffmpeg decodes from `data` (fails the test if it cannot). No -xerror: a WAV
    streamed as it is made says 0xFFFFFFFF for its sizes, which ffmpeg reports at the end."""
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(RATE), "pipe:1"],
                            input=data, capture_output=True, timeout=60)
    assert decode.returncode == 0, f"ffmpeg cannot decode the {what}: {decode.stderr.decode(errors='replace')}"
    return len(decode.stdout) / (2 * RATE)


# --- Transcribe ---------------------------------------------------------------------------------


def test_list_providers_says_which_models_take_streaming_input(prism):
    reply = prism.ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
    models = {m.id: m for p in reply.providers for m in p.models}
    assert models["local/pocketsphinx"].features.streaming_input, models["local/pocketsphinx"]
    assert not models["local/espeak"].features.streaming_input, models["local/espeak"]


def test_segments_arrive_while_the_audio_is_still_being_sent(prism):
    speech = (TEST_DATA / "goforward.raw").read_bytes()
    # Two utterances: the first, with a pause long enough for the engine to hear it end, is sent;
    # the second only once a segment of the first has come back.
    first = speech + quiet(1.5, 1)
    rest = speech + quiet(1.0, 2)
    got_segment = threading.Event()
    rest_sent = threading.Event()
    waited = []

    def requests():
        yield prism_pb2.TranscribeRequest(config=prism_pb2.TranscribeConfig(
            mime_type="audio/L16;rate=16000", route=prism_pb2.Route(model="local/pocketsphinx")))
        yield from chunks(first)
        waited.append(got_segment.wait(FIRST_SEGMENT_WAIT_S))
        yield from chunks(rest)
        rest_sent.set()

    segments, final, routed = [], None, []
    for event in prism.Transcribe(requests(), timeout=RPC_TIMEOUT_S + FIRST_SEGMENT_WAIT_S):
        kind = event.WhichOneof("event")
        if kind == "routed":
            routed.append(event.routed.model)
        elif kind == "segment":
            segments.append((event.segment.text, rest_sent.is_set()))
            got_segment.set()
        elif kind == "final":
            final = event.final
    assert routed == ["local/pocketsphinx"], routed
    assert waited == [True], "no segment came back before the end of the upload"
    assert segments and segments[0] == ("go forward ten meters", False), segments
    assert len(segments) >= 2, segments
    assert " ".join(text for text, _ in segments) == "go forward ten meters go forward ten meters", segments
    assert final is not None and final.text == "go forward ten meters go forward ten meters", final
    assert final.duration_seconds == pytest.approx((len(first) + len(rest)) / (2 * RATE), abs=0.01)


def test_a_wav_upload_streams_and_a_second_config_after_a_segment_is_refused(prism):
    # A WAV (sniffed and decoded by the media core) streams as raw PCM does; a request that breaks
    # the protocol after a segment was sent (a second config) still ends the call with a status
    # that names the problem.
    speech = (TEST_DATA / "goforward.raw").read_bytes()
    pcm = speech + quiet(1.5, 3)
    wav = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16) \
        + b"data" + struct.pack("<I", len(pcm)) + pcm
    got_segment = threading.Event()

    def requests():
        yield prism_pb2.TranscribeRequest(config=prism_pb2.TranscribeConfig(route=prism_pb2.Route(model="local/pocketsphinx")))
        yield from chunks(wav)
        got_segment.wait(FIRST_SEGMENT_WAIT_S)
        yield prism_pb2.TranscribeRequest(config=prism_pb2.TranscribeConfig())

    segments = []
    with pytest.raises(grpc.RpcError) as failure:
        for event in prism.Transcribe(requests(), timeout=RPC_TIMEOUT_S + FIRST_SEGMENT_WAIT_S):
            if event.WhichOneof("event") == "segment":
                segments.append(event.segment.text)
                got_segment.set()
    assert segments == ["go forward ten meters"], segments
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.value
    assert "config" in failure.value.details(), failure.value.details()


# --- Synthesize ---------------------------------------------------------------------------------


def synthesize(prism, text: str, fmt: str) -> tuple[str, bytes]:
    mimes, audio = set(), bytearray()
    for event in prism.Synthesize(prism_pb2.SynthesizeRequest(text=text, format=fmt), timeout=RPC_TIMEOUT_S):
        if event.WhichOneof("event") == "audio":
            mimes.add(event.audio.mime_type)
            audio += event.audio.data
    assert len(mimes) == 1, mimes
    return mimes.pop(), bytes(audio)


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_synthesize_compressed_formats_decode(prism, fmt):
    mime, audio = synthesize(prism, "The quick brown fox jumps over the lazy dog.", fmt)
    if fmt == "mp3":
        assert mime == "audio/mpeg", mime
        # An ID3 tag or straight into an MPEG audio frame (11 sync bits).
        assert audio[:3] == b"ID3" or (audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0), audio[:4]
    else:
        assert mime.startswith("audio/ogg") or mime == "audio/opus", mime
        assert audio[:4] == b"OggS" and b"OpusHead" in audio[:64], audio[:64]
    seconds = decoded_seconds(audio, fmt)
    assert 1.0 < seconds < 10.0, f"{fmt}: {seconds} s for one sentence"


def test_concurrent_synthesize_calls_all_succeed(prism):
    texts = [f"Sentence number {n}. " * (n + 1) for n in range(6)]
    with ThreadPoolExecutor(len(texts)) as pool:
        results = list(pool.map(lambda text: synthesize(prism, text, "wav"), texts))
    durations = []
    for text, (mime, audio) in zip(texts, results):
        assert mime == "audio/wav", mime
        assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE", audio[:12]
        seconds = decoded_seconds(audio, f"WAV of {text!r}")
        rate = struct.unpack("<I", audio[24:28])[0]
        assert seconds == pytest.approx((len(audio) - 44) / (2 * rate), abs=0.05), (seconds, len(audio), rate)
        durations.append(seconds)
    # Each is a plausible length for its text (about 1 s per repetition), and longer texts last longer.
    for n, seconds in enumerate(durations):
        assert 0.5 * (n + 1) < seconds < 4.0 * (n + 1), (n, seconds)
    assert durations == sorted(durations), durations
