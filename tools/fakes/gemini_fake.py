#!/usr/bin/env python3
"""A fake Gemini API server speaking the wire format of shared/vendor-apis.md §3:
- POST /v1beta/models/{model}:streamGenerateContent?alt=sse: `data:` frames ending in CRLF CRLF with
  no [DONE], usageMetadata as a running total, finishReason on the last chunk, functionCall parts whole;
- POST /v1beta/models/{model}:generateContent: the same answer whole; on a TTS model (a name with
  "tts") it checks responseModalities ["AUDIO"] and the prebuilt voice and answers real 16-bit 24 kHz
  PCM (a 440 Hz sine, 0.1 s a word) in camelCase inlineData;
- the Files API: POST /upload/v1beta/files (resumable start, X-Goog-Upload-* headers, answering an
  x-goog-upload-url), the upload URL ("upload, finalize"), GET /v1beta/files/{id} (PROCESSING, ACTIVE
  from the second poll; a display name with "stuck" never leaves PROCESSING, one with "broken" turns
  FAILED); a file_data part must name an uploaded ACTIVE file of its mime type;
- generationConfig.responseSchema checked against the OpenAPI subset (an unknown keyword is a 400
  INVALID_ARGUMENT "Unknown name", as Gemini answers), responseMimeType required with a schema, and
  the answer then a JSON value that fits the schema;
- error bodies with google.rpc details (a wrong key is 400 INVALID_ARGUMENT + API_KEY_INVALID, a 429
  carries RetryInfo.retryDelay). Requests may use snake_case or camelCase field names;
- the Batch API with inline requests (gemini_batch.py);
- POST /v1beta/models/{model}:batchEmbedContents: one embedding per request, the made-up vectors of
  openai_embeddings.py (hashed character trigrams), each request naming the same model.

Usage: gemini_fake.py [--port 0] [--key KEY] [--log FILE]; prints "PORT <n>" once listening.
Scenarios (a word in the last user text part): tool, slow, cut, once-429, always-429, retry-<N>s (the
RetryInfo delay, default 0.4s), status-NNN; otherwise an echo listing each medium ("[image/png WxH]",
"[application/pdf N bytes]", "[file audio/wav N bytes]"). Every request is logged as a JSON line.
The agent loop of fakeserver.agent_script (agent-N in the first user text) streams a text part, then
a functionCall part (no id, as Gemini sends them) on turns before N.
"""
import base64
import itertools
import json
import math
import socket
import struct
import threading
import time
from urllib.parse import parse_qs, urlparse
from fakeserver import FakeHandler, agent_script, image_size, log, serve
from openai_embeddings import vector
import json_answers
from gemini_batch import BatchRoutes


SLOW_DELAY_SECONDS = 0.05
SLOW_DELTAS = 200
STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
SEEN_ONCE = set()
# The OpenAPI-subset Schema object of the API (google.ai.generativelanguage.v1beta.Schema).
SCHEMA_FIELDS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
                 "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
                 "propertyOrdering", "default", "items", "minimum", "maximum"}
SCHEMA_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}
VOICES = {"Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe", "Enceladus",
          "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia", "Achernar",
          "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia",
          "Sadaltager", "Sulafat"}
TTS_RATE = 24000
SECONDS_PER_WORD = 0.1

FILES = {}  # id → {"mime", "bytes", "state", "polls", "uploaded"}
FILES_LOCK = threading.Lock()
FILE_IDS = itertools.count(1)


def compact(obj):
    # As captured: a space after ':', none after ','.
    return json.dumps(obj, separators=(",", ": "))


def field(obj, snake, camel):
    return obj.get(snake, obj.get(camel)) if isinstance(obj, dict) else None


def schema_error(schema, where):
    """Gemini's complaint about a responseSchema outside the OpenAPI subset, or None."""
    if not isinstance(schema, dict):
        return "Invalid value at '%s': not an object" % where
    for key in schema:
        if key not in SCHEMA_FIELDS:
            return "Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot find field." % (key, where)
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in SCHEMA_TYPES):
        return "Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %s" % (where, json.dumps(kind))
    if isinstance(kind, str) and kind.upper() == "OBJECT" and not schema.get("properties"):
        return "%s.properties: should be non-empty for OBJECT type" % where
    if "enum" in schema and not all(isinstance(v, str) for v in schema["enum"]):
        return "Invalid value at '%s.enum': enum values must be strings" % where
    children = [("%s.properties[%s].value" % (where, k), v) for k, v in (schema.get("properties") or {}).items()]
    children += [("%s.any_of[%d]" % (where, i), v) for i, v in enumerate(schema.get("anyOf") or [])]
    if "items" in schema:
        children.append(("%s.items" % where, schema["items"]))
    for path, child in children:
        error = schema_error(child, path)
        if error:
            return error
    return None


def file_ref(ref):
    """What a file_data part names, and why Gemini would refuse it (None if it would not)."""
    uri, mime = field(ref, "file_uri", "fileUri") or "", field(ref, "mime_type", "mimeType")
    file_id = uri.rpartition("/files/")[2] if "/files/" in uri else None
    with FILES_LOCK:
        f = dict(FILES.get(file_id) or {})
    problem = None
    if not f:
        problem = "File %s does not exist or was not uploaded." % uri
    elif f["state"] != "ACTIVE":
        problem = "The File %s is not in an ACTIVE state and usage is not allowed." % file_id
    elif mime != f["mime"]:
        problem = "file_data.mime_type %s does not match the uploaded file's %s" % (mime, f["mime"])
    return {"file_uri": uri, "file": file_id, "mime_type": mime, "bytes": f.get("bytes", 0), "state": f.get("state"), "problem": problem}


def summarize_body(body):
    """(media, files, last user text) of a GenerateContent body, whose base64 data becomes its size."""
    media, files, text = [], [], ""
    for index, content in enumerate(body.get("contents", [])):
        for part in content.get("parts", []):
            inline = field(part, "inline_data", "inlineData")
            if inline:
                data = inline["data"]
                raw_media = base64.b64decode(data)
                w, h = image_size(raw_media)
                media.append({"mime_type": field(inline, "mime_type", "mimeType"), "bytes": len(raw_media), "width": w,
                              "height": h, "newlines": "\n" in data, "content": index})
                inline["data"] = "<%d bytes>" % len(raw_media)
            ref = field(part, "file_data", "fileData")
            if ref:
                files.append(file_ref(ref))
            if content.get("role", "user") == "user" and "text" in part:
                text = part["text"]
    return media, files, text


def first_user_text(body):
    for content in body.get("contents", []):
        texts = [p["text"] for p in content.get("parts", []) if "text" in p]
        if content.get("role", "user") == "user" and texts:
            return " ".join(texts)
    return ""


def echo_pieces(text, media, files):
    """The echo answer's text pieces: what was said and each medium."""
    pieces = ["You said: ", text] + [" [%s %dx%d]" % (m["mime_type"], m["width"], m["height"]) if m["width"]
                                     else " [%s %d bytes]" % (m["mime_type"], m["bytes"]) for m in media]
    return pieces + [" [file %s %d bytes]" % (f["mime_type"], f["bytes"]) for f in files]


def sine_pcm(samples):
    return b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / TTS_RATE))) for i in range(samples))


class Handler(BatchRoutes, FakeHandler):
    summarize_body = staticmethod(summarize_body)
    echo_pieces = staticmethod(echo_pieces)

    def authorized(self):
        given = self.headers.get("x-goog-api-key")
        return "none" if given is None else ("ok" if given == self.args.key else "wrong")

    def deny(self):
        return self.error(400, "API key not valid. Please pass a valid API key.",
                          [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])

    def do_GET(self):
        auth = self.authorized()
        path = urlparse(self.path).path
        if path.startswith("/v1beta/batches/"):
            return self.batch_get(path[len("/v1beta/batches/"):], auth)
        file_id = path[len("/v1beta/files/"):] if path.startswith("/v1beta/files/") else None
        with FILES_LOCK:
            f = FILES.get(file_id)
            if f and auth == "ok" and f["uploaded"]:
                f["polls"] += 1
                name = f["display_name"] or ""
                f["state"] = "FAILED" if "broken" in name else "PROCESSING" if "stuck" in name or f["polls"] < 2 else "ACTIVE"
            state = f and f["state"]
        log(self.args, {"path": self.path, "kind": "poll", "auth": auth, "file": file_id, "state": state})
        if auth != "ok":
            return self.deny()
        if not f:
            return self.error(404, "File %s not found." % file_id)
        self.reply(200, self.file_json(file_id))

    def file_json(self, file_id):
        f = FILES[file_id]
        host = self.headers.get("host")
        return {"name": "files/" + file_id, "displayName": f["display_name"], "mimeType": f["mime"], "sizeBytes": str(f["bytes"]),
                "createTime": "2026-01-01T00:00:00Z", "expirationTime": "2026-01-03T00:00:00Z", "state": f["state"],
                "uri": "http://%s/v1beta/files/%s" % (host, file_id), "source": "UPLOADED"}

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        url = urlparse(self.path)
        if url.path == "/upload/v1beta/files":
            upload_id = parse_qs(url.query).get("upload_id", [None])[0]
            return self.upload(upload_id, raw) if upload_id else self.upload_start(raw)
        auth = self.authorized()
        if url.path.startswith("/v1beta/batches/") and url.path.endswith(":cancel"):
            return self.batch_cancel(url.path[len("/v1beta/batches/"):-len(":cancel")], auth)
        if url.path.startswith("/v1beta/models/") and url.path.endswith(":batchEmbedContents"):
            return self.embed(url.path[len("/v1beta/models/"):-len(":batchEmbedContents")], auth, json.loads(raw))
        if url.path.startswith("/v1beta/models/") and url.path.endswith(":batchGenerateContent"):
            return self.batch_create(url.path[len("/v1beta/models/"):-len(":batchGenerateContent")], auth, raw)
        body = json.loads(raw)
        media, files, text = summarize_body(body)
        body["media"], body["files"] = media, files
        self.task = first_user_text(body)
        turn = 1 + sum(1 for c in body.get("contents", []) if c.get("role") == "model")
        entry = {"path": self.path, "peer_port": self.client_address[1], "auth": auth, "text": text, "task": self.task, "turn": turn, "body": body, "trace_context": self.trace_context()}
        log(self.args, entry)
        model, _, method = url.path.rpartition("/")[2].partition(":")
        if not url.path.startswith("/v1beta/models/") or method not in ("streamGenerateContent", "generateContent"):
            return self.error(404, "Not found")
        if auth != "ok":
            return self.deny()
        words = text.split()
        for word in words:
            if word.startswith("status-"):
                return self.error(int(word[7:]), "fake failure")
        if "always-429" in words or ("once-429" in words and text not in SEEN_ONCE):
            SEEN_ONCE.add(text)
            delay = next((w[6:] for w in words if w.startswith("retry-") and w.endswith("s")), "0.4s")
            return self.error(429, "Resource has been exhausted (e.g. check quota).",
                              [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}])
        bad = next((f for f in files if f["problem"]), None)
        if bad:
            return self.error(400, bad["problem"])
        config = field(body, "generation_config", "generationConfig") or {}
        schema = field(config, "response_schema", "responseSchema")
        json_schema = field(config, "response_json_schema", "responseJsonSchema")
        if schema is not None or json_schema is not None:
            if field(config, "response_mime_type", "responseMimeType") != "application/json":
                return self.error(400, "response_mime_type: only application/json is supported with a response schema")
            error = schema_error(schema, "generation_config.response_schema") if schema is not None else None
            if error:
                return self.error(400, error, [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                                "fieldViolations": [{"field": "generation_config.response_schema", "description": error}]}])
        if "tts" in model:
            if method != "generateContent":
                return self.error(400, "fake: the TTS model is served on generateContent")
            return self.speech(config, words, entry)
        if schema is not None or json_schema is not None:
            user_texts = [p.get("text", "") for c in body.get("contents", []) if c.get("role", "user") == "user" for p in c.get("parts", [])]
            attempt = 1 + sum(1 for c in body.get("contents", []) if c.get("role") == "model")
            answer = json_answers.answer(user_texts, attempt, schema if schema is not None else json_schema)
            log(self.args, {"event": "json-answer", "text": text, "answer": answer})
            pieces = [answer[:len(answer) // 2], answer[len(answer) // 2:]]
        else:
            pieces = echo_pieces(text, media, files)
        script = agent_script(self.task, turn)
        if script == "done":
            pieces = ["Done after ", "%d turns." % turn]
        elif script == "tool":
            declarations = field((body.get("tools") or [{}])[0], "function_declarations", "functionDeclarations") or [{}]
            pieces = [{"functionCall": {"name": declarations[0].get("name", "get_weather"), "args": {"step": turn}}}, "Taking step %d." % turn]
        if method == "generateContent":
            return self.reply(200, self.response([{"text": "".join(pieces)}], len(pieces), "STOP"))
        self.stream(["slow"] if script == "slow" else [] if script else words, pieces, text)

    def upload_start(self, raw):
        auth = self.authorized()
        h = {name: self.headers.get(name) for name in ("X-Goog-Upload-Protocol", "X-Goog-Upload-Command",
                                                       "X-Goog-Upload-Header-Content-Length", "X-Goog-Upload-Header-Content-Type")}
        meta = json.loads(raw or b"{}").get("file") or {}
        display_name = field(meta, "display_name", "displayName")
        problem = None
        if h["X-Goog-Upload-Protocol"] != "resumable" or h["X-Goog-Upload-Command"] != "start" \
                or not (h["X-Goog-Upload-Header-Content-Length"] or "").isdigit() or not h["X-Goog-Upload-Header-Content-Type"]:
            problem = "fake: a resumable start needs X-Goog-Upload-Protocol, -Command: start and -Header-Content-Length/-Type"
        file_id = "fake%d" % next(FILE_IDS) if auth == "ok" and not problem else None
        log(self.args, {"path": self.path, "kind": "upload-start", "auth": auth, "headers": h, "display_name": display_name,
                        "file": file_id, "problem": problem})
        if auth != "ok":
            return self.deny()
        if problem:
            return self.error(400, problem)
        with FILES_LOCK:
            FILES[file_id] = {"mime": h["X-Goog-Upload-Header-Content-Type"], "bytes": int(h["X-Goog-Upload-Header-Content-Length"]),
                              "display_name": display_name, "state": "PROCESSING", "polls": 0, "uploaded": False}
        url = "http://%s/upload/v1beta/files?upload_id=%s&upload_protocol=resumable" % (self.headers.get("host"), file_id)
        self.reply(200, {}, {"x-goog-upload-url": url, "x-goog-upload-status": "active"})

    def upload(self, file_id, raw):
        command, offset = self.headers.get("X-Goog-Upload-Command"), self.headers.get("X-Goog-Upload-Offset")
        with FILES_LOCK:
            f = FILES.get(file_id)
            problem = None
            if not f or f["uploaded"]:
                problem = "fake: unknown or finished upload %s" % file_id
            elif command != "upload, finalize" or offset != "0":
                problem = "fake: expected X-Goog-Upload-Command 'upload, finalize' at X-Goog-Upload-Offset 0, got %r at %r" % (command, offset)
            elif len(raw) != f["bytes"]:
                problem = "fake: %d bytes uploaded, %d declared at start" % (len(raw), f["bytes"])
            else:
                f["uploaded"] = True
        log(self.args, {"path": self.path, "kind": "upload", "file": file_id, "command": command, "offset": offset,
                        "bytes": len(raw), "problem": problem})
        if problem:
            return self.error(400, problem)
        self.reply(200, {"file": self.file_json(file_id)}, {"x-goog-upload-status": "final"})

    def speech(self, config, words, entry):
        modalities = field(config, "response_modalities", "responseModalities")
        speech = field(config, "speech_config", "speechConfig") or {}
        voice = field(field(field(speech, "voice_config", "voiceConfig"), "prebuilt_voice_config", "prebuiltVoiceConfig"),
                      "voice_name", "voiceName")
        if modalities != ["AUDIO"]:
            return self.error(400, "The requested combination of response modalities (%s) is not supported by the model." % modalities)
        if voice not in VOICES:
            return self.error(400, "Voice %s is not supported." % voice)
        samples = int(TTS_RATE * SECONDS_PER_WORD * max(1, len(words)))
        log(self.args, {"event": "speech", "text": entry["text"], "voice": voice, "samples": samples, "rate": TTS_RATE})
        audio = {"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=%d" % TTS_RATE, "data": base64.b64encode(sine_pcm(samples)).decode()}}
        self.reply(200, self.response([audio], 0, "STOP"))

    def reply(self, status, obj, headers=None):
        payload = json.dumps(obj, indent=2).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def embed(self, model, auth, body):
        requests = body.get("requests")
        texts = [" ".join(p.get("text", "") for p in (r.get("content") or {}).get("parts", [])) for r in requests or []]
        log(self.args, {"path": self.path, "auth": auth, "model": model, "input": texts,
                        "request_models": sorted({r.get("model") for r in requests or []})})
        if auth != "ok":
            return self.deny()
        if not requests or len(requests) > 100:
            return self.error(400, "* BatchEmbedContentsRequest.requests: must have 1 to 100 requests")
        if any(r.get("model") != "models/" + model for r in requests):
            return self.error(400, "* BatchEmbedContentsRequest.model: each request's model must be models/%s" % model)
        self.reply(200, {"embeddings": [{"values": vector(t)} for t in texts]})

    def error(self, status, message, details=None):
        self.reply(status, {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN"),
                                      "details": details or []}})

    @staticmethod
    def response(parts, total, finish=None):
        candidate = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": total, "totalTokenCount": 9 + total},
                "modelVersion": "gemini-fake", "responseId": "resp_fake"}

    def frame(self, parts, total, finish=None):
        payload = ("data: %s\r\n\r\n" % compact(self.response(parts, total, finish))).encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def stream(self, words, pieces, text):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            if pieces and isinstance(pieces[0], dict):  # the agent loop's turn: its text, then the call
                self.frame([{"text": pieces[1]}], 1)
                self.frame([pieces[0]], 3, "STOP")
            elif "tool" in words:
                self.frame([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], 3, "STOP")
            elif "slow" in words:
                for i in range(SLOW_DELTAS):
                    self.frame([{"text": "tick %d " % i}], i + 1)
                    time.sleep(SLOW_DELAY_SECONDS)
                self.frame([{"text": ""}], SLOW_DELTAS, "STOP")
            elif "cut" in words:
                self.frame([{"text": "partial"}], 1)
                log(self.args, {"event": "cut"})
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            else:
                for n, piece in enumerate(pieces):
                    self.frame([{"text": piece}], n + 1)
                self.frame([{"text": ""}], len(pieces) + 2, "STOP")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            log(self.args, {"event": "completed", "text": text, "task": self.task})
        except (BrokenPipeError, ConnectionResetError):
            log(self.args, {"event": "disconnected", "text": text, "task": self.task})
            self.close_connection = True


if __name__ == "__main__":
    serve(Handler)
