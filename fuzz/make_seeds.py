#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (committed; run again after changing a target's
input layout). Seeds are small valid inputs of each kind, so libFuzzer starts from the shapes real
clients and vendors send: gRPC frames, HTTP/1.1 and HTTP/2 requests, messages, JSON, schemas, event
streams, and tiny images, PDFs and audio made with vips and ffmpeg (from the test fixtures' tools)."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "interop"))
import h2raw  # noqa: E402  (frames and HPACK blocks built by hand)
import pdfmaker  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def framed(payload: bytes, compressed: bool = False) -> bytes:
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


def http1(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: localhost"] + [f"{n}: {v}" for n, v in headers]
    if body or method == "POST":
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def seeds_wire() -> None:
    # framing: option byte (bit 0 gzip, the rest chunking), then DATA.
    write("framing", "one-message", b"\x00" + framed(b"\x0a\x05hello"))
    write("framing", "two-messages-chunked", b"\x06" + framed(b"\x08\x01") + framed(b""))
    write("framing", "gzip-message", b"\x01" + framed(gzip.compress(b"\x0a\x05hello" * 20), compressed=True))
    write("framing", "cut-short", b"\x00" + framed(b"abcdef")[:7])
    # gzip: the bytes themselves.
    write("gzip", "text", gzip.compress(b"Prism streams answers " * 30))
    write("gzip", "empty-member", gzip.compress(b""))
    write("gzip", "plain", b"not gzip at all")

    health = framed(b"")
    seeds = {
        "grpc-web": http1("POST", "/grpc.health.v1.Health/Check",
                          [("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")], health),
        "grpc-web-text": http1("POST", "/fuzz.Echo/Echo", [("content-type", "application/grpc-web-text")],
                               __import__("base64").b64encode(framed(b"\x0a\x02hi"))),
        "connect-unary-proto": http1("POST", "/fuzz.Echo/Echo",
                                     [("content-type", "application/proto"), ("connect-protocol-version", "1"),
                                      ("connect-timeout-ms", "5000")], b"\x0a\x02hi"),
        "connect-unary-json": http1("POST", "/grpc.health.v1.Health/Check",
                                    [("content-type", "application/json")], b'{"service":"prism"}'),
        "connect-unary-gzip": http1("POST", "/grpc.health.v1.Health/Check",
                                    [("content-type", "application/json"), ("content-encoding", "gzip")],
                                    gzip.compress(b'{"service":""}')),
        "connect-stream": http1("POST", "/fuzz.Echo/Fail", [("content-type", "application/connect+proto")],
                                framed(b"\x0a\x02hi")),
        "page-and-keepalive": http1("GET", "/healthz", [("if-none-match", '"1"')]) + http1("HEAD", "/healthz", []),
        "preflight": http1("OPTIONS", "/fuzz.Echo/Echo",
                           [("origin", "https://app.example"), ("access-control-request-method", "POST"),
                            ("access-control-request-headers", "content-type,x-grpc-web")]),
        "chunked-body": b"POST /fuzz.Echo/Echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc-web\r\n"
                        b"transfer-encoding: chunked\r\n\r\n5\r\n" + framed(b"")[:5] + b"\r\n0\r\n\r\n",
    }
    for name, data in seeds.items():
        write("connection", name, b"\x00" + data)
    # HTTP/2: the preface, SETTINGS, a call with its message, then a second stream reset.
    block = h2raw.encode_headers(h2raw.grpc_request_headers("/fuzz.Echo/Echo", extra=[("grpc-timeout", "5S")]))
    h2 = h2raw.PREFACE + h2raw.settings_frame({}) + h2raw.headers_frames(1, block)
    h2 += h2raw.data_frame(1, framed(b"\x0a\x02hi"), end_stream=True)
    h2 += h2raw.ping_frame() + h2raw.window_update_frame(0, 1 << 16) + h2raw.rst_stream_frame(3)
    write("connection", "http2-call", b"\x00" + h2)


def seeds_proto() -> None:
    # The option byte picks the request type (methods sorted by path); generic valid encodings.
    bodies = [b"", b"\x0a\x05hello", b"\x08\x96\x01\x12\x03abc", b"\x0a\x04\x0a\x02hi\x10\x01",
              b"\x1a\x06\x0a\x04text\x22\x02\x08\x01", b"\x2a\x03\x01\x02\x03\x35\x00\x00\x80\x3f"]
    for index in range(40):
        write("protobuf", f"type-{index:02d}", bytes([index]) + bodies[index % len(bodies)])
    jsons = [b"{}", b'{"service":"prism"}', b'{"model":"openai/gpt-4o","messages":[{"role":"USER","parts":[{"text":"hi"}]}]}',
             b'{"responseSize":3,"payload":{"body":"AAEC"},"fillUsername":true}', b'{"host":"x","listServices":""}',
             b'{"options":{"temperature":0.5,"maxTokens":"12"},"metadata":{"a":"b"}}']
    for index in range(40):
        write("protojson", f"type-{index:02d}", bytes([index, 0]) + jsons[index % len(jsons)])


def seeds_json() -> None:
    docs = {
        "object": b'{"a":[1,2.5e-3,-0,true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00\\n"}}',
        "numbers": b"[0, -1, 1e308, 123456789012345678901234567890, 0.1, 5E+2]",
        "string": b'"tab\\tquote\\"slash\\/"',
        "nested": b"[[[[[[[[[[{}]]]]]]]]]]",
    }
    for name, data in docs.items():
        write("json", name, data)
    schemas = {
        "object": (b'{"type":"object","properties":{"name":{"type":"string","minLength":1},"age":{"type":"integer","minimum":0}},'
                   b'"required":["name"],"additionalProperties":false}', b'{"name":"Ada","age":36}'),
        "refs": (b'{"$defs":{"n":{"type":"number","multipleOf":0.5}},"type":"array","items":{"$ref":"#/$defs/n"},"maxItems":3}',
                 b"[1,1.5,2]"),
        "combinators": (b'{"anyOf":[{"type":"string","pattern":"^[a-z]+$"},{"type":"null"}],"not":{"const":"x"}}', b'"abc"'),
        "conditional": (b'{"if":{"properties":{"k":{"const":1}}},"then":{"required":["v"]},"else":{"enum":[1,2]},'
                        b'"dependentRequired":{"a":["b"]},"uniqueItems":true,"format":"date-time"}', b'{"k":1,"v":2}'),
    }
    for name, (schema, instance) in schemas.items():
        write("schema", name, schema + b"\x00" + instance)


def seeds_pluginkit() -> None:
    write("sse", "openai", b"\x05" + b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n')
    write("sse", "anthropic", b"\x09" + b"event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
                                        b": ping\r\nevent: content_block_delta\r\ndata: {\"delta\":{\"text\":\"x\"}}\r\n\r\n")
    write("sse", "cr-only-and-multiline", b"\x03" + b"data: a\rdata: b\r\rid: 7\nretry: 10\ndata\n\n")
    write("multipart", "transcription", b"\x01" + b"\x00".join([b"file", b"audio.wav", b"audio/wav", b"RIFF....WAVE",
                                                                b"model", b"whisper-1", b"language", b"en"]))
    write("multipart", "quoted-names", b"\x00" + b"\x00".join([b'na"me', b"v\r\nalue", b"x\ny", b"z"]))


def seeds_media() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        def run(*args: str) -> None:
            subprocess.run(args, check=True, capture_output=True)
        run("vips", "black", str(t / "b.v"), "12", "9", "--bands", "3")
        for ext, opts in [("png", ""), ("jpg", "[Q=50]"), ("gif", ""), ("webp", "[Q=20]"), ("tif", "")]:
            run("vips", "copy", str(t / "b.v"), str(t / f"b.{ext}{opts}"))
        for index, ext in enumerate(["png", "jpg", "gif", "webp", "tif"]):
            data = (t / f"b.{ext}").read_bytes()
            write("media", f"inspect-{ext}", b"\x00" + data)
            write("media", f"fit-{ext}", b"\x01" + data)
        pdf = pdfmaker.text_pdf([["Hello fuzz"], ["page two"]])
        write("media", "pdf", b"\x02" + pdf)
        write("media", "inspect-pdf", b"\x00" + pdf)
        run("ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.05",
            "-ar", "8000", "-ac", "1", str(t / "a.wav"))
        run("ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-i", str(t / "a.wav"), "-b:a", "8k", str(t / "a.mp3"))
        run("ffmpeg", "-y", "-nostdin", "-loglevel", "error", "-i", str(t / "a.wav"), str(t / "a.flac"))
        for ext in ["wav", "mp3", "flac"]:
            write("media", f"audio-{ext}", b"\x03" + (t / f"a.{ext}").read_bytes())


if __name__ == "__main__":
    seeds_wire()
    seeds_proto()
    seeds_json()
    seeds_pluginkit()
    seeds_media()
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        print(f"{folder.name:12} {len(files):3} seeds {sum(f.stat().st_size for f in files):7} bytes")
