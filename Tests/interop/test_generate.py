"""Generate and ListProviders from the Python grpcio client, through the example C plugin
(local/mediainfo, which answers with the facts of the media it is given) that `swift build`
puts beside prism-server, where the server loads plugins from by default."""

from __future__ import annotations

import struct
import zlib

import grpc
from prism.v1 import prism_pb2, prism_pb2_grpc

import pdfmaker
from harness import RPC_TIMEOUT_S


def png(width: int, height: int) -> bytes:
    """A real PNG (8-bit grey, a diagonal gradient), made without any imaging library."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\x00" + bytes((x + y) % 256 for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pdf(pages: int) -> bytes:
    """A valid PDF with `pages` pages, each saying its number, with a correct xref table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font = 3 + 2 * pages
    for i in range(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        text = f"BT /F1 24 Tf 40 100 Td (Page {i + 1}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return pdfmaker.assemble(objects)


def test_list_providers_shows_the_example_plugin(interop_server):
    with interop_server.channel() as channel:
        reply = prism_pb2_grpc.PrismStub(channel).ListProviders(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S)
    models = {m.id: m for p in reply.providers for m in p.models}
    assert "local/mediainfo" in models, sorted(models)
    info = models["local/mediainfo"]
    assert prism_pb2.OPERATION_GENERATE in info.operations
    assert {prism_pb2.MODALITY_IMAGE, prism_pb2.MODALITY_PDF} <= set(info.inputs), info


def test_generate_with_an_image_and_a_pdf(interop_server):
    request = prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[
            prism_pb2.Part(text="What are these?"),
            # The declared type lies; the gateway sniffs the bytes and says what they are.
            prism_pb2.Part(media=prism_pb2.Media(mime_type="image/jpeg", data=png(64, 48), name="chart")),
            prism_pb2.Part(media=prism_pb2.Media(mime_type="application/pdf", data=pdf(3), name="report")),
        ])],
        route=prism_pb2.Route(model="local/mediainfo"))
    with interop_server.channel() as channel:
        events = list(prism_pb2_grpc.PrismStub(channel).Generate(request, timeout=RPC_TIMEOUT_S))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds and kinds[0] == "routed", f"the first event must be routed: {kinds}"
    assert events[0].routed.model.endswith("mediainfo"), events[0].routed
    assert "finished" in kinds, kinds
    text = "".join(e.text.text for e in events if e.WhichOneof("event") == "text")
    assert "image/png: 64x48 pixels" in text, text
    assert "application/pdf: 3 pages" in text, text


def test_generate_with_nothing_capable_names_what_is_missing(interop_server):
    request = prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[prism_pb2.Part(text="hi")])],
        route=prism_pb2.Route(model="nosuch/model"))
    with interop_server.channel() as channel:
        try:
            list(prism_pb2_grpc.PrismStub(channel).Generate(request, timeout=RPC_TIMEOUT_S))
        except grpc.RpcError as err:
            assert err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), err
            assert "nosuch/model" in err.details(), err.details()
        else:
            raise AssertionError("Generate with an unknown model succeeded")
