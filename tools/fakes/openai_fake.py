#!/usr/bin/env python3
"""A fake OpenAI server speaking the wire format of shared/vendor-apis.md §2: Chat Completions (SSE
`data:` frames, [DONE], include_usage, tool-call fragments, error bodies), with scenarios picked
by the last user text, and a JSON-lines log of what it received for tests to read. The audio
transcription, speech and image generation endpoints are in openai_media.py, embeddings in
openai_embeddings.py; the Batch API (files upload, batches, file content) is in openai_batch.py,
whose answers are built by answer() here.

Usage: openai_fake.py [--port 0] [--key KEY] [--log FILE]; prints "PORT <n>" once listening.

Scenarios (a word in the last user text part):
  tool          two tool calls, their arguments split over several fragments, joined by index
  slow          200 deltas, 50 ms apart (cancellation tests watch for the disconnect)
  flood         FLOOD_DELTAS deltas of 4 KiB as fast as the connection takes them (64 MiB); logs
                {"event": "blocked", "sent": n} the first time the socket has no room for the next
                one, i.e. once the reader stopped reading (flow-control tests wait for it)
  cut           two deltas, then the connection is closed mid-body (no last chunk, no [DONE])
  midstream     one delta, then `data: {"error":…}` and the end of the stream
  status-NNN    that HTTP status with the vendor's error body (429/5xx carry retry-after: 1)
  stall         no answer at all for 10 s (not even headers); logs "disconnected" as soon as the
                client closes the connection, so tests see cancellation before the first byte
  once-429      429 with retry-after: 1 the first time this exact text is seen, then a normal answer
  numbered      the echo followed by " (answer N)", N counting the requests with this exact text
  (otherwise)   an echo: "You said: <text>" and one "[image WxH mime]" per image, in deltas

The agent loop of fakeserver.agent_script (agent-N in the first user text) streams a content delta
and one tool call (id call_tN, its arguments in fragments) on turns before N.

A batch line (openai_batch.py) is answered by batch_answer(): the echo or the tool calls as one
chat.completion, or an error for a status-NNN word, model "bad-model", or no model or messages.
"""
import base64
import json
import random
import select
import socket
import string
import time
import openai_batch
import openai_embeddings
import openai_media
from fakeserver import FakeHandler, agent_script, image_size, log, serve
import json_answers

# Delay between deltas of the slow scenario, and how many; long enough to cancel midway.
SLOW_DELAY_SECONDS = 0.05
SLOW_DELTAS = 200
# The flood scenario: more than loopback socket buffers (a few MiB each way) can hold.
FLOOD_DELTAS = 16384
FLOOD_DELTA_BYTES = 4096
# How long the stall scenario keeps a request unanswered.
STALL_SECONDS = 10
ERROR_TYPES = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
               403: ("invalid_request_error", "unsupported_country_region_territory"),
               404: ("invalid_request_error", "model_not_found"), 413: ("invalid_request_error", None),
               409: ("invalid_request_error", None), 429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None),
               503: ("server_error", None)}

SEEN_ONCE = set()
# Requests seen per text, for the numbered scenario.
SEEN_COUNT = {}
# The usage every answer reports.
USAGE = {"prompt_tokens": 16, "completion_tokens": 7, "total_tokens": 23}
# The tool scenario's calls: id, name, and the arguments in the fragments they are streamed in.
TOOL_CALLS = [("call_a1", "get_weather", ['{"ci', 'ty":"Par', 'is"}']), ("call_b2", "get_time", ['{"tz":', '"CET"}'])]


def summarize(body):
    """The request body with data URLs and base64 replaced by what a test asserts on: its images,
    audio parts and files, each with its size and whether the base64 had line breaks."""
    images, audio, files = [], [], []
    for index, message in enumerate(body.get("messages", [])):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get("type") == "input_audio":
                b64 = part["input_audio"].get("data", "")
                raw = base64.b64decode(b64)
                audio.append({"format": part["input_audio"].get("format"), "bytes": len(raw), "newlines": "\n" in b64,
                              "riff": raw[:4] == b"RIFF", "wav": openai_media.wav_duration(raw)})
                part["input_audio"]["data"] = "<%d bytes>" % len(raw)
            elif part.get("type") == "file":
                file_data = part["file"].get("file_data", "")
                header, _, b64 = file_data.partition(",")
                raw = base64.b64decode(b64)
                files.append({"filename": part["file"].get("filename"), "header": header, "bytes": len(raw),
                              "newlines": "\n" in b64, "pdf": raw[:5] == b"%PDF-"})
                part["file"]["file_data"] = header + ",<%d bytes>" % len(raw)
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                header, _, b64 = url.partition(",")
                raw = base64.b64decode(b64)
                w, h = image_size(raw)
                images.append({"mime": header[5:].split(";")[0], "bytes": len(raw), "width": w, "height": h,
                               "detail": part["image_url"].get("detail"), "newlines": "\n" in b64, "message": index})
                part["image_url"]["url"] = header + ",<%d bytes>" % len(raw)
    body["images"] = images
    body["audio"] = audio
    body["files"] = files
    return body


def answer(text, summary):
    """The answer of the echo and tool scenarios, shared by streamed and batch answers: (content
    pieces, tool calls as TOOL_CALLS, finish_reason). `summary` is the request's summarize()."""
    if "tool" in text.split():
        return [], TOOL_CALLS, "tool_calls"
    pieces = ["You said: ", text]
    pieces += [" [image %dx%d %s]" % (i["width"], i["height"], i["mime"]) for i in summary["images"]]
    pieces += [" [audio %s %d bytes]" % (a["format"], a["bytes"]) for a in summary["audio"]]
    pieces += [" [file %s %d bytes]" % (f["filename"], f["bytes"]) for f in summary["files"]]
    if "numbered" in text.split():
        SEEN_COUNT[text] = SEEN_COUNT.get(text, 0) + 1
        pieces.append(" (answer %d)" % SEEN_COUNT[text])
    return pieces, [], "stop"


def completion(body):
    """A non-streamed chat.completion object answering `body`, as the batch output holds."""
    pieces, calls, finish = answer(last_user_text(body), summarize(json.loads(json.dumps(body))))
    message = {"role": "assistant", "content": "".join(pieces) if pieces else None, "refusal": None}
    if calls:
        message["tool_calls"] = [{"id": cid, "type": "function", "function": {"name": name, "arguments": "".join(args)}}
                                 for cid, name, args in calls]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": dict(USAGE), "service_tier": "batch", "system_fingerprint": "fp_fake"}


def error_body(status, message, param=None, code=...):
    """The vendor's error body for `status`; `code` replaces the status's usual code when given."""
    etype, usual = ERROR_TYPES.get(status, ("server_error", None))
    code = usual if code is ... else code
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def batch_answer(body):
    """(status_code, body) of one batch line's request: the vendor's error for a body it refuses (no
    model, no messages, model "bad-model", a status-NNN word in the last user text), else completion()."""
    if not body.get("model"):
        return 400, error_body(400, "you must provide a model parameter", "model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return 400, error_body(400, "Missing required parameter: 'messages'.", "messages")
    if body["model"] == "bad-model":
        return 404, error_body(404, "The model `bad-model` does not exist or you do not have access to it.")
    for word in last_user_text(body).split():
        if word.startswith("status-") and word[7:].isdigit():
            return int(word[7:]), error_body(int(word[7:]), "fake failure %s" % word[7:])
    return 200, completion(body)


def first_user_text(body):
    message = next((m for m in body.get("messages", []) if m.get("role") == "user"), {})
    content = message.get("content") or ""
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content if p.get("type") == "text")


def last_user_text(body):
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def json_answer(body):
    """The JSON text answering a request with response_format json_schema, or None without one."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user":
            texts += [content] if isinstance(content, str) else [p.get("text", "") for p in content if p.get("type") == "text"]
    attempt = 1 + sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    return json_answers.answer(texts, attempt, response_format.get("json_schema", {}).get("schema"))


class Handler(FakeHandler):
    # What openai_batch logs a batch's lines with and answers them with.
    summarize = staticmethod(summarize)
    batch_answer = staticmethod(batch_answer)

    def auth_state(self):
        """"none", "ok" or "wrong": the request's Authorization against --key."""
        auth = self.headers.get("authorization")
        return "none" if auth is None else ("ok" if self.args.key and auth == "Bearer " + self.args.key else "wrong")

    def do_GET(self):
        if not openai_batch.get(self, self.auth_state()):
            log(self.args, {"path": self.path, "method": "GET", "auth": self.auth_state()})
            self.error(404, "Invalid URL (GET %s)" % self.path)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        key = self.args.key
        auth_state = self.auth_state()
        if self.path == "/v1/audio/transcriptions":
            return openai_media.transcriptions(self, raw, auth_state)
        if openai_batch.post(self, raw, auth_state):
            return
        try:
            body = json.loads(raw)
        except ValueError:
            return self.error(400, "We could not parse the JSON body of your request.")
        if self.path == "/v1/audio/speech":
            return openai_media.speech(self, body, auth_state)
        if self.path == "/v1/images/generations":
            return openai_media.images(self, body, auth_state)
        if self.path == "/v1/embeddings":
            return openai_embeddings.embeddings(self, body, auth_state)
        text = last_user_text(body)
        self.task = first_user_text(body)
        self.turn = 1 + sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        entry = {"path": self.path, "peer_port": self.client_address[1], "auth": auth_state, "content_type": self.headers.get("content-type"),
                 "task": self.task, "turn": self.turn,
                 "accept": self.headers.get("accept"), "text": text, "body": summarize(json.loads(raw)), "trace_context": self.trace_context()}
        log(self.args, entry)
        if self.path != "/v1/chat/completions":
            return self.error(404, "Invalid URL (POST %s)" % self.path)
        if key and auth_state != "ok":
            return self.error(401, "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.")
        for word in text.split():
            if word.startswith("status-"):
                return self.error(int(word[7:]), "fake failure %s" % word[7:])
        if "once-429" in text and text not in SEEN_ONCE:
            SEEN_ONCE.add(text)
            return self.error(429, "Rate limit reached for requests")
        if "stall" in text.split():
            return self.stall(text)
        json_schema = (body.get("response_format") or {}).get("json_schema") or {}
        if json_schema.get("strict"):
            problem = json_answers.strict_error(json_schema.get("schema"))
            if problem:
                return self.error(400, problem, param="response_format")
        self.stream(body, text, entry)

    def stall(self, text):
        end = time.time() + STALL_SECONDS
        while time.time() < end:
            readable, _, _ = select.select([self.connection], [], [], 0.02)
            if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                log(self.args, {"event": "disconnected", "text": text})
                self.close_connection = True
                return
        self.error(500, "stalled")

    def error(self, status, message, param=None, code=...):
        payload = json.dumps(error_body(status, message, param, code)).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-request-id", "req_fake")
        if status == 429 or status >= 500:
            self.send_header("retry-after", "1")
        self.end_headers()
        self.wfile.write(payload)

    def send_json(self, status, obj):
        payload = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-request-id", "req_fake")
        self.send_header("openai-version", "2020-10-01")
        self.end_headers()
        self.wfile.write(payload)

    # --- streaming ---

    def chunk(self, choices, usage=None, include_usage=False):
        obj = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": self.model,
               "service_tier": "default", "system_fingerprint": "fp_fake", "choices": choices}
        if include_usage:
            obj["usage"] = usage
        obj["obfuscation"] = "".join(random.choice(string.ascii_letters) for _ in range(random.randint(1, 8)))
        return obj

    def frame(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        payload = ("data: %s\n\n" % data).encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def stream(self, body, text, entry):
        self.model = body.get("model", "")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", "req_fake")
        self.send_header("openai-processing-ms", "5")
        self.send_header("openai-version", "2020-10-01")
        self.end_headers()
        u = include_usage

        def delta(d, finish=None):
            self.frame(self.chunk([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}], None, u))

        try:
            delta({"role": "assistant", "content": "", "refusal": None})
            schema_answer = json_answer(body)
            if schema_answer is not None:
                pieces, calls, finish = [schema_answer[:len(schema_answer) // 2], schema_answer[len(schema_answer) // 2:]], [], "stop"
            else:
                pieces, calls, finish = answer(text, entry["body"])
            words = text.split()
            script = agent_script(self.task, self.turn)
            if script == "tool":
                name = ((body.get("tools") or [{}])[0].get("function") or {}).get("name", "get_weather")
                pieces, calls, finish = ["Taking step %d." % self.turn], [("call_t%d" % self.turn, name, ['{"st', 'ep": %d}' % self.turn])], "tool_calls"
            elif script == "done":
                pieces, calls, finish = ["Done after ", "%d turns." % self.turn], [], "stop"
            elif script == "slow":
                words, calls = ["slow"], []
            for piece in pieces if calls else []:
                delta({"content": piece})
            if calls:
                for index, (cid, name, _) in enumerate(calls):
                    delta({"tool_calls": [{"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]})
                for index, (_, _, fragments) in enumerate(calls):
                    for piece in fragments:
                        delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            elif "slow" in words:
                for i in range(SLOW_DELTAS):
                    delta({"content": "tick %d " % i})
                    time.sleep(SLOW_DELAY_SECONDS)
            elif "flood" in words:
                piece = "f" * (FLOOD_DELTA_BYTES - 1) + " "
                blocked = False
                for i in range(FLOOD_DELTAS):
                    if not blocked and not select.select([], [self.connection], [], 0)[1]:
                        blocked = True
                        log(self.args, {"event": "blocked", "sent": i, "text": text})
                    delta({"content": piece})
            elif "cut" in words:
                delta({"content": "partial "})
                delta({"content": "answer"})
                log(self.args, {"event": "cut"})
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            elif "midstream" in words:
                delta({"content": "partial"})
                self.frame({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}})
                self.wfile.write(b"0\r\n\r\n")
                return
            else:
                for piece in pieces:
                    delta({"content": piece})
            delta({}, finish)
            if include_usage:
                self.frame(self.chunk([], dict(USAGE), True))
            self.frame("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            log(self.args, {"event": "completed", "text": text, "task": self.task})
        except (BrokenPipeError, ConnectionResetError):
            log(self.args, {"event": "disconnected", "text": text, "task": self.task})
            self.close_connection = True


if __name__ == "__main__":
    serve(Handler)
