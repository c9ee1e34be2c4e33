"""The media endpoints of the fake OpenAI server (openai_fake.py): audio transcriptions (multipart,
verbose_json with segments and words), speech (raw PCM streamed chunked in several pieces) and image
generations (b64_json of a real PNG), checked and answered as shared/vendor-apis.md §2 describes.

Each function takes the request handler (for its args, error() and wfile), logs what it received
as one JSON line, and answers. A `status-NNN` word in a speech input or image prompt answers that
status with the vendor's error body, as the chat scenarios do."""

import base64
import hashlib
import json
import math
import re
import struct
import time
import zlib

from fakeserver import log

TRANSCRIBE_MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize"}
TRANSCRIBE_EXTENSIONS = {"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"}
RESPONSE_FORMATS = {"json", "text", "srt", "verbose_json", "vtt", "diarized_json"}
# 25 MiB: the file limit of whisper-1.
MAX_FILE_BYTES = 26_214_400
LANGUAGES = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian", "nl": "dutch"}
# What the fake "hears": two segments, spread over the audio's duration.
SEGMENT_TEXTS = ("Hello from the fake transcriber.", "The second segment ends here.")
SEGMENT_LOGPROBS = (-0.25, -0.4)

SPEECH_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
VOICES = {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"}
SPEECH_FORMATS = {"mp3", "opus", "aac", "flac", "wav", "pcm"}
MAX_SPEECH_INPUT = 4096
PCM_RATE = 24_000
# Speech pieces: an odd size, so a reader must carry half a sample over; a short pause between.
SPEECH_PIECE_BYTES = 4801
SPEECH_PIECE_DELAY_SECONDS = 0.01

IMAGE_MODELS = {"dall-e-2": 1000, "dall-e-3": 4000, "gpt-image-1": 32000, "gpt-image-1-mini": 32000,
                "gpt-image-1.5": 32000, "gpt-image-2": 32000}
GPT_IMAGE_SIZES = {"auto", "1024x1024", "1536x1024", "1024x1536"}
DALLE_SIZES = {"dall-e-2": {"256x256", "512x512", "1024x1024"}, "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"}}
# The PNG answered is the requested size divided by this (1024x1024 → 16x16): real, and small.
IMAGE_SCALE = 64


# --- multipart/form-data -----------------------------------------------------------------------


def parse_multipart(content_type, raw):
    """[(name, filename or None, content type or None, bytes)] of a multipart/form-data body, or
    raises ValueError saying what is wrong with it (strict: CRLF line ends, a closing boundary)."""
    match = re.match(r'multipart/form-data;\s*boundary=("?)([^";]+)\1\s*$', content_type or "")
    if not match:
        raise ValueError("Content-Type is not multipart/form-data with a boundary: %r" % content_type)
    delimiter = b"--" + match.group(2).encode()
    if not raw.startswith(delimiter + b"\r\n"):
        raise ValueError("the body does not start with the boundary")
    end = raw.find(b"\r\n" + delimiter + b"--")
    if end < 0:
        raise ValueError("the body has no closing boundary")
    parts = []
    for chunk in raw[len(delimiter) + 2:end].split(b"\r\n" + delimiter + b"\r\n"):
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no blank line after its headers")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        if not disposition.startswith("form-data") or not name:
            raise ValueError("a part has no form-data name: %r" % disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        parts.append((name.group(1), filename.group(1) if filename else None, headers.get("content-type"), data))
    return parts


def wav_duration(data):
    """(seconds, rate, channels) of a PCM WAV, read from its chunks; None if it is not one."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    i, rate, channels, bits = 12, 0, 0, 0
    while i + 8 <= len(data):
        kind, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        if kind == b"fmt ":
            channels, rate = struct.unpack("<HI", data[i + 10:i + 16])
            bits = struct.unpack("<H", data[i + 22:i + 24])[0]
        elif kind == b"data" and rate and channels and bits:
            size = min(size, len(data) - i - 8)
            return size / (rate * channels * bits // 8), rate, channels
        i += 8 + size + (size & 1)
    return None


def transcriptions(handler, raw, auth_state):
    try:
        parts = parse_multipart(handler.headers.get("content-type"), raw)
    except ValueError as err:
        log(handler.args, {"path": handler.path, "auth": auth_state, "multipart_error": str(err)})
        return handler.error(400, "Could not parse multipart form: %s" % err)
    fields, files = {}, []
    for name, filename, ctype, data in parts:
        if filename is None:
            fields.setdefault(name, []).append(data.decode("utf-8"))
        else:
            files.append({"field": name, "filename": filename, "content_type": ctype, "data": data})
    one = {k: v[0] for k, v in fields.items()}
    granularities = fields.get("timestamp_granularities[]", [])
    info = wav_duration(files[0]["data"]) if files else None
    entry = {"path": handler.path, "auth": auth_state, "content_type": handler.headers.get("content-type"),
             "fields": fields, "model": one.get("model"), "response_format": one.get("response_format"),
             "granularities": granularities, "language": one.get("language"),
             "files": [{"field": f["field"], "filename": f["filename"], "content_type": f["content_type"], "size": len(f["data"]),
                        "wav_rate": info[1] if info else None, "wav_channels": info[2] if info else None} for f in files]}
    log(handler.args, entry)
    if handler.args.key and auth_state != "ok":
        return handler.error(401, "Incorrect API key provided: sk-****.")
    file = next((f for f in files if f["field"] == "file"), None)
    if file is None:
        return handler.error(400, "you must provide a file", param="file")
    model = one.get("model")
    if not model:
        return handler.error(400, "you must provide a model parameter", param="model")
    if model not in TRANSCRIBE_MODELS:
        return handler.error(400, "Invalid model '%s'. The model must be one of %s." % (model, sorted(TRANSCRIBE_MODELS)), param="model")
    ext = file["filename"].rsplit(".", 1)[-1].lower() if "." in file["filename"] else ""
    if ext not in TRANSCRIBE_EXTENSIONS:
        return handler.error(400, "Invalid file format. Supported formats: %s" % sorted(TRANSCRIBE_EXTENSIONS), param="file")
    if len(file["data"]) > MAX_FILE_BYTES:
        return handler.error(413, "Maximum content size limit (%d) exceeded (%d bytes read)" % (MAX_FILE_BYTES, len(file["data"])))
    response_format = one.get("response_format", "json")
    if response_format not in RESPONSE_FORMATS:
        return handler.error(400, "Invalid response_format '%s'" % response_format, param="response_format")
    if model != "whisper-1" and response_format != "json":
        return handler.error(400, "response_format '%s' is not compatible with model '%s'" % (response_format, model), param="response_format")
    if granularities and response_format != "verbose_json":
        return handler.error(400, "timestamp_granularities requires response_format=verbose_json", param="timestamp_granularities")
    if set(granularities) - {"word", "segment"}:
        return handler.error(400, "Invalid timestamp_granularities %s" % granularities, param="timestamp_granularities")
    language = one.get("language")
    if language is not None and not re.fullmatch(r"[a-z]{2}", language):
        return handler.error(400, "Invalid language '%s'. Language parameter must be specified in ISO-639-1 format." % language, param="language")
    duration = round(info[0], 3) if info else round(len(file["data"]) / 32000, 3)
    answer = verbose_answer(duration, language, granularities or ["segment"])
    if response_format == "json":
        answer = {"text": answer["text"], "usage": answer["usage"]}
    handler.send_json(200, answer)


def verbose_answer(duration, language, granularities):
    half = round(duration / 2, 3)
    spans = ((0.0, half), (half, duration))
    answer = {"task": "transcribe", "language": LANGUAGES.get(language or "en", "english"), "duration": duration,
              "text": " ".join(SEGMENT_TEXTS)}
    if "segment" in granularities:
        answer["segments"] = [{"id": i, "seek": 0, "start": start, "end": end, "text": " " + text,
                               "tokens": [50364 + j for j in range(len(text.split()))], "temperature": 0.0,
                               "avg_logprob": SEGMENT_LOGPROBS[i], "compression_ratio": 1.2, "no_speech_prob": 0.01}
                              for i, ((start, end), text) in enumerate(zip(spans, SEGMENT_TEXTS))]
    if "word" in granularities:
        words = []
        for (start, end), text in zip(spans, SEGMENT_TEXTS):
            tokens = text.split()
            step = (end - start) / len(tokens)
            words += [{"word": w.strip(".,"), "start": round(start + k * step, 3), "end": round(start + (k + 1) * step, 3)}
                      for k, w in enumerate(tokens)]
        answer["words"] = words
    answer["usage"] = {"type": "duration", "seconds": math.ceil(duration)}
    return answer


# --- speech ------------------------------------------------------------------------------------


def tone(seconds):
    """A 440 Hz tone at 24 kHz, s16le mono: what the fake "says"."""
    count = int(seconds * PCM_RATE)
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / PCM_RATE))) for i in range(count))


def speech(handler, body, auth_state):
    text = body.get("input") if isinstance(body.get("input"), str) else ""
    entry = {"path": handler.path, "auth": auth_state, "content_type": handler.headers.get("content-type"), "text": text,
             "model": body.get("model"), "voice": body.get("voice"), "response_format": body.get("response_format"),
             "speed": body.get("speed"), "keys": sorted(body)}
    if handler.args.key and auth_state != "ok":
        log(handler.args, entry)
        return handler.error(401, "Incorrect API key provided: sk-****.")
    problem = speech_problem(body, text)
    if problem:
        log(handler.args, entry)
        return handler.error(*problem)
    # Half a second plus 50 ms per character, at most 10 s: long enough for several pieces.
    pcm = tone(min(10.0, 0.5 + 0.05 * len(text)))
    payload = pcm
    if body.get("response_format") == "wav":
        payload = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, PCM_RATE, PCM_RATE * 2, 2, 16) \
            + b"data" + struct.pack("<I", len(pcm)) + pcm
    pieces = [payload[i:i + SPEECH_PIECE_BYTES] for i in range(0, len(payload), SPEECH_PIECE_BYTES)]
    entry.update({"sent_bytes": len(payload), "sent_sha256": hashlib.sha256(payload).hexdigest(), "pieces": len(pieces)})
    log(handler.args, entry)
    handler.send_response(200)
    handler.send_header("content-type", "application/octet-stream")
    handler.send_header("transfer-encoding", "chunked")
    handler.send_header("x-request-id", "req_fake")
    handler.end_headers()
    try:
        for piece in pieces:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.flush()
            time.sleep(SPEECH_PIECE_DELAY_SECONDS)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        log(handler.args, {"event": "disconnected", "text": text})
        handler.close_connection = True


def speech_problem(body, text):
    """(status, message, param) for a speech request the vendor refuses, or None."""
    for word in text.split():
        if word.startswith("status-") and word[7:].isdigit():
            return int(word[7:]), "fake failure %s" % word[7:], None
    if body.get("model") not in SPEECH_MODELS:
        return 400, "Invalid model '%s'. The model must be one of %s." % (body.get("model"), sorted(SPEECH_MODELS)), "model"
    if not text:
        return 400, "Missing required parameter: 'input'.", "input"
    if len(text) > MAX_SPEECH_INPUT:
        return 400, "Invalid 'input': string too long. Expected a string with maximum length %d, but got a string with length %d instead." \
            % (MAX_SPEECH_INPUT, len(text)), "input"
    voice = body.get("voice")
    if not (voice in VOICES or (isinstance(voice, dict) and voice.get("id"))):
        return 400, "Invalid value for 'voice': %r." % (voice,), "voice"
    if body.get("response_format", "mp3") not in SPEECH_FORMATS:
        return 400, "Invalid value for 'response_format': %r." % body.get("response_format"), "response_format"
    if body.get("response_format", "mp3") not in ("pcm", "wav"):
        return 400, "this fake produces pcm and wav only", "response_format"
    speed = body.get("speed", 1)
    if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4:
        return 400, "Invalid 'speed': %r is outside 0.25 to 4." % (speed,), "speed"
    if "instructions" in body and str(body.get("model")).startswith("tts-1"):
        return 400, "instructions are not supported by %s" % body["model"], "instructions"
    return None


# --- images ------------------------------------------------------------------------------------


def png(width, height):
    """A real RGB PNG with a gradient, made with zlib alone."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), 128)) for x in range(width))
                    for y in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def images(handler, body, auth_state):
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    model = body.get("model", "dall-e-2")
    entry = {"path": handler.path, "auth": auth_state, "text": prompt, "model": model, "n": body.get("n"),
             "size": body.get("size"), "response_format": body.get("response_format"), "keys": sorted(body)}
    log(handler.args, entry)
    if handler.args.key and auth_state != "ok":
        return handler.error(401, "Incorrect API key provided: sk-****.")
    for word in prompt.split():
        if word.startswith("status-") and word[7:].isdigit():
            return handler.error(int(word[7:]), "fake failure %s" % word[7:])
    if model not in IMAGE_MODELS:
        return handler.error(400, "Invalid model '%s'. The model must be one of %s." % (model, sorted(IMAGE_MODELS)), param="model")
    if not prompt:
        return handler.error(400, "Missing required parameter: 'prompt'.", param="prompt")
    if len(prompt) > IMAGE_MODELS[model]:
        return handler.error(400, "Invalid 'prompt': maximum length is %d characters." % IMAGE_MODELS[model], param="prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= (1 if model == "dall-e-3" else 10):
        return handler.error(400, "Invalid 'n': %r." % (n,), param="n")
    size = body.get("size", "auto" if model.startswith("gpt-image") else "1024x1024")
    if size not in DALLE_SIZES.get(model, GPT_IMAGE_SIZES):
        return handler.error(400, "Invalid value: '%s'. Supported values are: %s." % (size, sorted(DALLE_SIZES.get(model, GPT_IMAGE_SIZES))), param="size")
    is_dalle = model.startswith("dall-e")
    if "response_format" in body and not is_dalle:
        return handler.error(400, "Unknown parameter: 'response_format'.", param="response_format")
    width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
    image = png(width // IMAGE_SCALE, height // IMAGE_SCALE)
    data = [{"b64_json": base64.b64encode(image).decode()} for _ in range(n)]
    answer = {"created": int(time.time()), "data": data}
    if not is_dalle:
        input_tokens = len(prompt.split())
        answer.update({"background": "opaque", "output_format": "png", "size": "%dx%d" % (width, height), "quality": "medium",
                       "usage": {"total_tokens": input_tokens + 272, "input_tokens": input_tokens, "output_tokens": 272,
                                 "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 0}}})
    log(handler.args, {"event": "image", "text": prompt, "png_bytes": len(image), "png_sha256": hashlib.sha256(image).hexdigest(),
                       "width": width // IMAGE_SCALE, "height": height // IMAGE_SCALE})
    handler.send_json(200, answer)
