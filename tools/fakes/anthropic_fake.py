#!/usr/bin/env python3
"""A fake Anthropic Messages API server speaking the wire format of shared/vendor-apis.md
(`event:` + `data:` SSE frames from message_start to message_stop, `ping`, input_json_delta,
`event: error`, error bodies with request_id), with scenarios picked by the last user text and a
JSON-lines log of what it received for tests to read. Message Batches are in anthropic_batch.py.

Usage: anthropic_fake.py [--port 0] [--key KEY] [--log FILE]; prints "PORT <n>" once listening.
Scenarios (a word in the last user text block): tool, slow, cut, midstream, status-NNN, overloaded
(529 every time), once-429,
otherwise an echo listing each image ("[image WxH mime]") and document ("[document N bytes]").
The agent loop of fakeserver.agent_script (agent-N in the first user text) streams a text block and
a tool_use block (id toolu_tN, its input in input_json_delta pieces) on turns before N; images
inside tool_result blocks are summarized with the tool_use_id they answer.
Prompt caching: cache_control marks (at most 4, else the API's 400) make message_start's usage
report cache_creation_input_tokens the first time a prefix is seen and cache_read_input_tokens after.
"""
import base64
import hashlib
import json
import socket
import time
from anthropic_batch import BatchRoutes
from fakeserver import FakeHandler, agent_script, image_size, log, serve
import json_answers


SLOW_DELAY_SECONDS = 0.05
SLOW_DELTAS = 200
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               504: "timeout_error", 529: "overloaded_error"}
SEEN_ONCE = set()
# Prompt-cache prefixes written so far (hashes of the request up to a cache_control mark).
CACHED_PREFIXES = set()
# The API's limit on cache_control blocks in one request.
MAX_CACHE_BREAKPOINTS = 4



def summarize(body):
    """The body with base64 data replaced by what a test asserts on."""
    images, documents = [], []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        # Blocks of the message, and those inside its tool_result blocks (with the id they answer).
        blocks = [(b, None) for b in content]
        blocks += [(inner, b.get("tool_use_id")) for b in content if b.get("type") == "tool_result"
                   and isinstance(b.get("content"), list) for inner in b["content"]]
        for block, tool_use_id in blocks:
            source = block.get("source") or {}
            if source.get("type") != "base64":
                continue
            data = source["data"]
            raw = base64.b64decode(data)
            item = {"media_type": source.get("media_type"), "bytes": len(raw), "newlines": "\n" in data}
            if tool_use_id:
                item["tool_use_id"] = tool_use_id
            if block["type"] == "image":
                item["sha256"] = hashlib.sha256(raw).hexdigest()
                item["width"], item["height"] = image_size(raw)
                images.append(item)
            elif block["type"] == "document":
                item["title"] = block.get("title")
                documents.append(item)
            source["data"] = "<%d bytes>" % len(raw)
    body["images"], body["documents"] = images, documents
    return body


def last_user_text(body):
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def first_user_text(body):
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def answer_pieces(text, summary):
    """The echo answer's text pieces: what was said and each medium."""
    pieces = ["You said: ", text]
    pieces += [" [image %dx%d %s]" % (i["width"], i["height"], i["media_type"]) for i in summary["images"]]
    pieces += [" [document %d bytes]" % d["bytes"] for d in summary["documents"]]
    return pieces


def cache_usage(body):
    """The prompt cache's part of usage for `body`, as the API reports it: the tokens of the
    request up to its last cache_control mark (tools, system, messages; 4 bytes a token) are
    written the first time that prefix is seen, read after. (None, count) when over the limit."""
    prefix, marks, tokens = [], 0, 0
    parts = [("tools", body.get("tools", []))]
    system = body.get("system")
    parts.append(("system", system if isinstance(system, list) else [{"text": system or ""}]))
    for message in body.get("messages", []):
        content = message.get("content")
        parts.append((message.get("role"), content if isinstance(content, list) else [{"text": content}]))
    for role, blocks in parts:
        for block in blocks:
            prefix.append(json.dumps([role, block], sort_keys=True))
            if isinstance(block, dict) and block.get("cache_control"):
                marks += 1
                tokens = len("".join(prefix)) // 4
                key = hash("".join(prefix))
    if marks > MAX_CACHE_BREAKPOINTS:
        return None, marks
    if not marks:
        return {}, 0
    if key in CACHED_PREFIXES:
        return {"cache_read_input_tokens": tokens, "cache_creation_input_tokens": 0}, marks
    CACHED_PREFIXES.add(key)
    return {"cache_read_input_tokens": 0, "cache_creation_input_tokens": tokens}, marks


def forced_tool(body):
    """The tool that tool_choice forces ({"type": "tool", "name"}), or None."""
    choice = body.get("tool_choice") or {}
    if choice.get("type") != "tool":
        return None
    return next((t for t in body.get("tools", []) if t.get("name") == choice.get("name")), None)


def forced_tool_input(body, tool):
    """The input a fake model gives a forced tool: the script's or a sample of its input_schema;
    a scripted answer that is not an object goes in the schema's one required property."""
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "user":
            texts += [content] if isinstance(content, str) else [b.get("text", "") for b in content if b.get("type") == "text"]
    attempt = 1 + sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    text = json_answers.answer(texts, attempt, tool.get("input_schema"))
    value = json.loads(text)
    if not isinstance(value, dict):
        text = json.dumps({(tool["input_schema"].get("required") or ["value"])[0]: value})
    return text


class Handler(BatchRoutes, FakeHandler):
    summarize = staticmethod(summarize)
    last_user_text = staticmethod(last_user_text)

    def auth(self):
        given = self.headers.get("x-api-key")
        return "none" if given is None else ("ok" if given == self.args.key else "wrong")

    def do_GET(self):
        path = self.path.partition("?")[0]
        if path.startswith("/v1/messages/batches/"):
            return self.batch_get(path, self.auth())
        log(self.args, {"path": self.path, "method": "GET", "auth": self.auth()})
        self.error(404, "Not found")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        auth = self.auth()
        if self.path.startswith("/v1/messages/batches"):
            return self.batch_post(self.path.partition("?")[0], auth, raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return self.error(400, "invalid JSON")
        text = last_user_text(body)
        self.task = first_user_text(body)
        turn = 1 + sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        entry = {"path": self.path, "auth": auth, "version": self.headers.get("anthropic-version"), "task": self.task, "turn": turn,
                 "content_type": self.headers.get("content-type"), "text": text, "body": summarize(json.loads(raw)), "trace_context": self.trace_context()}
        log(self.args, entry)
        if self.path != "/v1/messages":
            return self.error(404, "Not found")
        if auth != "ok":
            return self.error(401, "invalid x-api-key")
        if self.headers.get("anthropic-version") != "2023-06-01":
            return self.error(400, "anthropic-version header is required")
        if "max_tokens" not in body:
            return self.error(400, "max_tokens: Field required")
        script = agent_script(self.task, turn, ("slow", "overloaded"))
        for word in text.split() + (["overloaded"] if script == "overloaded" else []):
            if word == "overloaded":
                return self.error(529, "Overloaded")
            if word.startswith("status-"):
                return self.error(int(word[7:]), "fake failure %s" % word[7:])
        tool = forced_tool(body)
        if (body.get("tool_choice") or {}).get("type") == "tool" and tool is None:
            return self.error(400, "tool_choice.name: tool '%s' not found in tools" % body["tool_choice"].get("name"))
        if tool is not None and (tool.get("input_schema") or {}).get("type") != "object":
            return self.error(400, "tools.0.custom.input_schema.type: Input should be 'object'")
        cached, marks = cache_usage(body)
        if cached is None:
            return self.error(400, "A maximum of %d blocks with cache_control may be provided. Found %d." % (MAX_CACHE_BREAKPOINTS, marks))
        entry["cache_usage"] = cached
        if "once-429" in text and text not in SEEN_ONCE:
            SEEN_ONCE.add(text)
            return self.error(429, "Number of requests has exceeded your rate limit")
        self.stream(body, text, entry, script, turn)

    def error(self, status, message):
        self.reply(status, {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
                            "request_id": "req_fake"})

    def reply(self, status, obj):
        self.reply_raw(status, json.dumps(obj).encode(), "application/json")

    def reply_raw(self, status, payload, content_type):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", "req_fake")
        if status in (429, 529) or status >= 500:
            self.send_header("retry-after", "1")
        self.end_headers()
        self.wfile.write(payload)

    @staticmethod
    def answer_message(params, text, summary):
        """The whole Message the streamed answer would add up to (for batches)."""
        if "tool" in text.split():
            content = [{"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": "".join(answer_pieces(text, summary))}]
            stop = "end_turn"
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": params.get("model"), "content": content,
                "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 5}}

    def event(self, obj):
        payload = ("event: %s\ndata: %s\n\n" % (obj["type"], json.dumps(obj, separators=(",", ":")))).encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def stream(self, body, text, entry, script=None, turn=1):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_fake")
        self.end_headers()
        words = text.split()
        try:
            self.event({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                        "model": body.get("model"), "content": [], "stop_reason": None, "stop_sequence": None,
                        "usage": dict({"input_tokens": 12, "output_tokens": 1}, **entry["cache_usage"])}})
            stop = "end_turn"
            tool = forced_tool(body)
            if tool is not None:
                # A forced tool is called at once, with no text before it.
                stop = "tool_use"
                arguments = forced_tool_input(body, tool)
                entry["tool_input"] = arguments
                log(self.args, {"event": "tool-answer", "tool": tool["name"], "input": arguments})
                self.event({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "tool_use", "id": "toolu_json", "name": tool["name"], "input": {}}})
                third = max(1, len(arguments) // 3)
                for piece in ["", arguments[:third], arguments[third:2 * third], arguments[2 * third:]]:
                    self.event({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}})
                self.event({"type": "content_block_stop", "index": 0})
            elif script == "tool":
                stop = "tool_use"
                name = (body.get("tools") or [{}])[0].get("name", "get_weather")
                self.text_block(0, ["Taking step %d." % turn])
                self.event({"type": "content_block_start", "index": 1,
                            "content_block": {"type": "tool_use", "id": "toolu_t%d" % turn, "name": name, "input": {}}})
                for piece in ["", '{"st', 'ep": %d}' % turn]:
                    self.event({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}})
                self.event({"type": "content_block_stop", "index": 1})
            elif script == "done":
                self.text_block(0, ["Done after ", "%d turns." % turn])
            elif "tool" in words:
                stop = "tool_use"
                self.text_block(0, ["Let me check."])
                self.event({"type": "content_block_start", "index": 1,
                            "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}})
                for piece in ["", '{"city": "Pa', 'ris"}']:
                    self.event({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}})
                self.event({"type": "content_block_stop", "index": 1})
            elif "slow" in words or script == "slow":
                self.text_block(0, ["tick %d " % i for i in range(SLOW_DELTAS)], delay=SLOW_DELAY_SECONDS)
            elif "cut" in words:
                self.event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                self.event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}})
                log(self.args, {"event": "cut"})
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            elif "midstream" in words:
                self.event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                self.event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}})
                self.event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                self.wfile.write(b"0\r\n\r\n")
                return
            else:
                self.text_block(0, answer_pieces(text, entry["body"]))
            self.event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 5}})
            self.event({"type": "message_stop"})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            log(self.args, {"event": "completed", "text": text, "task": self.task})
        except (BrokenPipeError, ConnectionResetError):
            log(self.args, {"event": "disconnected", "text": text, "task": self.task})
            self.close_connection = True

    def text_block(self, index, pieces, delay=0):
        self.event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        for n, piece in enumerate(pieces):
            self.event({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})
            if n == 0:
                self.event({"type": "ping"})  # as captured: a ping after the first block's start
            if delay:
                time.sleep(delay)
        self.event({"type": "content_block_stop", "index": index})


if __name__ == "__main__":
    serve(Handler)
