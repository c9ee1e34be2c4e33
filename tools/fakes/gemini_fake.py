#!/usr/bin/env python3
"""A fake Gemini API server for POST /v1beta/models/{model}:streamGenerateContent?alt=sse, speaking
the wire format of shared/vendor-apis.md: `data:` frames ending in CRLF CRLF with no [DONE],
usageMetadata as a running total, finishReason on the last chunk, functionCall parts whole, and
error bodies with google.rpc details (a wrong key is 400 INVALID_ARGUMENT + API_KEY_INVALID, a
429 carries RetryInfo.retryDelay). Accepts snake_case and camelCase request fields.

Usage: gemini_fake.py [--port 0] [--key KEY] [--log FILE]; prints "PORT <n>" once listening.
Scenarios (a word in the last user text part): tool, slow, cut, once-429, status-NNN; otherwise
an echo listing each inline medium ("[image/png WxH]", "[application/pdf N bytes]").
"""
import base64
import json
import socket
import time
from fakeserver import FakeHandler, image_size, log, serve


SLOW_DELAY_SECONDS = 0.05
SLOW_DELTAS = 200
STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
SEEN_ONCE = set()



def compact(obj):
    # As captured: a space after ':', none after ','.
    return json.dumps(obj, separators=(",", ": "))


class Handler(FakeHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        given = self.headers.get("x-goog-api-key")
        auth = "none" if given is None else ("ok" if given == self.args.key else "wrong")
        body = json.loads(raw)
        media, text = [], ""
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                inline = part.get("inline_data") or part.get("inlineData")
                if inline:
                    data = inline["data"]
                    raw_media = base64.b64decode(data)
                    mime = inline.get("mime_type") or inline.get("mimeType")
                    w, h = image_size(raw_media)
                    media.append({"mime_type": mime, "bytes": len(raw_media), "width": w, "height": h, "newlines": "\n" in data})
                    inline["data"] = "<%d bytes>" % len(raw_media)
                if content.get("role") == "user" and "text" in part:
                    text = part["text"]
        body["media"] = media
        log(self.args, {"path": self.path, "peer_port": self.client_address[1], "auth": auth, "text": text, "body": body})
        if not self.path.endswith(":streamGenerateContent?alt=sse"):
            return self.error(404, "Not found")
        if auth != "ok":
            return self.error(400, "API key not valid. Please pass a valid API key.",
                              [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])
        for word in text.split():
            if word.startswith("status-"):
                return self.error(int(word[7:]), "fake failure")
        if "once-429" in text and text not in SEEN_ONCE:
            SEEN_ONCE.add(text)
            return self.error(429, "Resource has been exhausted (e.g. check quota).",
                              [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.4s"}])
        self.stream(text, media)

    def error(self, status, message, details=None):
        payload = json.dumps({"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN"),
                                        "details": details or []}}, indent=2).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def frame(self, parts, total, finish=None):
        candidate = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        obj = {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": total, "totalTokenCount": 9 + total},
               "modelVersion": "gemini-fake", "responseId": "resp_fake"}
        payload = ("data: %s\r\n\r\n" % compact(obj)).encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def stream(self, text, media):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        words = text.split()
        try:
            if "tool" in words:
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
                pieces = ["You said: ", text] + [" [%s %dx%d]" % (m["mime_type"], m["width"], m["height"]) if m["width"]
                                                 else " [%s %d bytes]" % (m["mime_type"], m["bytes"]) for m in media]
                for n, piece in enumerate(pieces):
                    self.frame([{"text": piece}], n + 1)
                self.frame([{"text": ""}], len(pieces) + 2, "STOP")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            log(self.args, {"event": "completed", "text": text})
        except (BrokenPipeError, ConnectionResetError):
            log(self.args, {"event": "disconnected", "text": text})
            self.close_connection = True


if __name__ == "__main__":
    serve(Handler)
