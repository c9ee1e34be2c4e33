"""The document index from the Python grpcio client against the real prism-server: IndexDocument
(a PDF with a text layer, a scanned PDF read by the local tesseract plugin, an image, Markdown, a
real PDF from /usr/share/doc when the machine has one), retrieval-only Query (the right page first
for distinctive words), re-indexing that replaces, delete and the lists, Query answered through the
OpenAI and Anthropic fakes (which must receive the page images and the labelled chunks), speech
indexed as a timed transcript by local/pocketsphinx, page descriptions by a configured model, a keyless
server (retrieval works; generation is a clear FAILED_PRECONDITION), the upload bound, unknown
indexes, and uploads that are not documents or are password-protected."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import uuid
import wave
from pathlib import Path

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

import pdfmaker
from conftest import ServerPool, server_binary
from harness import RPC_TIMEOUT_S
from test_vendors import ANTHROPIC_MODEL, OPENAI_MODEL, fakes, kinds, of_kind, ok, png, text_of, vendor_env  # noqa: F401

# OCR and page rendering of a debug build on a busy 2-core machine: generous, never reached when healthy.
INDEX_TIMEOUT_S = 120.0
# The keyless server's upload bound (config index.max_upload_bytes), small enough to pass cheaply.
SMALL_UPLOAD_LIMIT = 1_000_000
# Upload chunk size: several chunks for every document, as a client streaming a file sends them.
CHUNK = 64 * 1024
# Speech that local/pocketsphinx recognises ("go forward ten meters"), 16 kHz mono s16 PCM.
SPEECH = Path("/usr/share/pocketsphinx/test/data/goforward.raw")
# A real PDF with a text layer that Debian ships (libtasn1-doc); used when present.
REAL_PDF = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")

PAGES = [
    ["Chapter One: Birds", "The resplendent quetzal lives in cloud forests.", "Its tail feathers are long and green."],
    ["Chapter Two: Flowers", "Zygomorphic flowers have one plane of symmetry.", "Orchids and snapdragons are examples."],
    ["Chapter Three: Stones", "Obsidian is volcanic glass that fractures conchoidally.", "It was used for blades."],
]


@pytest.fixture(scope="module")
def index_server(servers: ServerPool, fakes):  # noqa: F811
    server = servers.start("index-vendors", [], "h2c", env=vendor_env(fakes))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keyless_server(servers: ServerPool, session_dir: Path):
    """No vendor key and only the local OCR and speech engines in its plugin folder (no model that
    generates), with a small upload bound."""
    plugins = session_dir / "index-keyless-plugins"
    plugins.mkdir(exist_ok=True)
    for plugin in ("libprism-plugin-tesseract.so", "libprism-plugin-pocketsphinx.so"):
        shutil.copy2(server_binary().parent / plugin, plugins)
    config = session_dir / "index-keyless.json"
    config.write_text(json.dumps({"index": {"max_upload_bytes": SMALL_UPLOAD_LIMIT}}))
    env = {"PRISM_PLUGIN_PATH": str(plugins), "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""}
    server = servers.start("index-keyless", ["--config", str(config)], "h2c", env=env)
    try:
        yield server
    finally:
        server.stop()


def stub(server):
    return prism_pb2_grpc.PrismStub(server.channel())


def upload(server, index: str, data: bytes, *, mime: str = "", title: str = "", document_id: str = ""):
    """IndexDocument: the header, then the bytes in chunks."""
    def messages():
        yield prism_pb2.IndexDocumentRequest(header=prism_pb2.IndexDocumentHeader(
            index=index, document_id=document_id, mime_type=mime, title=title))
        for start in range(0, len(data), CHUNK):
            yield prism_pb2.IndexDocumentRequest(data=data[start:start + CHUNK])
    return stub(server).IndexDocument(messages(), timeout=INDEX_TIMEOUT_S)


def retrieve(server, index: str, question: str, **fields) -> prism_pb2.QueryHits:
    events = list(stub(server).Query(prism_pb2.QueryRequest(index=index, question=question, retrieve_only=True, **fields),
                                     timeout=RPC_TIMEOUT_S))
    assert kinds(events) == ["routed", "hits"], kinds(events)
    assert events[0].routed.model == "", "retrieval only names no model"
    return events[1].hits


def status_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call()
        if not isinstance(result, prism_pb2.IndexDocumentResponse):
            list(result)
    return caught.value


def unique_index(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's SOF marker."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    raise AssertionError("no SOF marker")


# --- indexing and retrieval without any model ------------------------------------------------------


def test_a_text_pdf_is_indexed_by_page_and_the_right_page_comes_first(keyless_server):
    index = unique_index("books")
    reply = upload(keyless_server, index, pdfmaker.text_pdf(PAGES), mime="application/pdf", title="Nature notes", document_id="nature")
    assert (reply.document_id, reply.pages, reply.images) == ("nature", 3, 3)
    assert reply.chunks >= 3
    assert any("index.describe_model is not set" in n for n in reply.notes), reply.notes
    assert not any("OCR" in n for n in reply.notes), f"every page has a text layer: {reply.notes}"

    for question, page in (("Which flowers have one plane of symmetry?", 2), ("what is obsidian", 3), ("quetzal tail feathers", 1)):
        hits = retrieve(keyless_server, index, question, include_images=True)
        assert hits.text[0].document_id == "nature" and hits.text[0].page == page, (question, hits.text)
        assert hits.text[0].title == "Nature notes" and hits.text[0].score > 0
        assert hits.pages[0].page == page, (question, hits.pages)
        image = hits.pages[0].image
        assert image.mime_type == "image/jpeg" and image.data[:3] == b"\xff\xd8\xff"
        assert 1500 < max(jpeg_size(image.data)) <= 1568, "page images are stored fitted to a 1568 px long edge"
    # Headings found in the text layer label the chunks.
    assert retrieve(keyless_server, index, "snapdragons").text[0].heading == "Chapter Two: Flowers"
    # Without include_images the hits carry no image bytes.
    assert not retrieve(keyless_server, index, "obsidian").pages[0].HasField("image")


def test_a_scanned_page_is_read_by_ocr(keyless_server, session_dir: Path):
    index = unique_index("scans")
    jpg, width, height = pdfmaker.text_image("INVOICE PELICAN 4471", session_dir, "index-scan", dpi=400)
    reply = upload(keyless_server, index, pdfmaker.scanned_pdf(jpg.read_bytes(), width, height), document_id="scan")
    assert (reply.pages, reply.images) == (1, 1)
    assert any("read by OCR (local/tesseract)" in n for n in reply.notes), reply.notes
    hits = retrieve(keyless_server, index, "pelican invoice")
    assert hits.text and hits.text[0].document_id == "scan" and hits.text[0].page == 1, hits
    assert "PELICAN" in hits.text[0].text.upper()


def test_an_image_is_indexed_with_its_ocr_text(keyless_server, session_dir: Path):
    index = unique_index("images")
    jpg, _, _ = pdfmaker.text_image("FLAMINGO RECEIPT", session_dir, "index-image", dpi=300)
    reply = upload(keyless_server, index, jpg.read_bytes(), mime="image/jpeg", document_id="photo")
    assert (reply.pages, reply.images) == (1, 1)
    hits = retrieve(keyless_server, index, "flamingo", include_images=True)
    assert hits.text[0].document_id == "photo" and "FLAMINGO" in hits.text[0].text.upper()
    assert hits.pages[0].image.data[:3] == b"\xff\xd8\xff"


def test_markdown_chunks_keep_their_headings(keyless_server):
    index = unique_index("docs")
    text = ("# Setup\n\nRead this first.\n\n## Debian\n\nInstall with apt-get install prism-gateway.\n\n"
            "## macOS\n\nInstall with brew install prism-gateway.\n\n# Usage\n\nRun prism-server with a kumquat config.\n")
    reply = upload(keyless_server, index, text.encode(), mime="text/markdown", document_id="readme")
    assert reply.pages == 0 and reply.images == 0 and reply.chunks >= 4
    hits = retrieve(keyless_server, index, "brew")
    assert hits.text[0].heading == "Setup › macOS" and hits.text[0].page == 0
    assert retrieve(keyless_server, index, "kumquat").text[0].heading == "Usage"
    assert not hits.pages, "a text document has no pages"


@pytest.mark.skipif(not REAL_PDF.is_file(), reason=f"{REAL_PDF} is not installed (libtasn1-doc)")
def test_a_real_pdf_from_debian(keyless_server):
    index = unique_index("debian")
    started = time.monotonic()
    reply = upload(keyless_server, index, REAL_PDF.read_bytes(), mime="application/pdf", document_id="libtasn1")
    elapsed = time.monotonic() - started
    print(f"\nindexed {REAL_PDF} ({reply.pages} pages, {reply.chunks} chunks) in {elapsed:.2f} s")
    assert reply.pages > 10 and reply.images == reply.pages
    started = time.monotonic()
    hits = retrieve(keyless_server, index, "asn1_der_decoding")
    print(f"retrieval-only query in {1000 * (time.monotonic() - started):.1f} ms")
    assert hits.text and "asn1_der_decoding" in hits.text[0].text


def test_audio_is_indexed_as_a_transcript_with_times(keyless_server):
    index = unique_index("audio")
    pcm = SPEECH.read_bytes()
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    reply = upload(keyless_server, index, wav.getvalue(), document_id="memo")
    assert reply.pages == 0 and reply.chunks >= 1
    assert any(n.startswith("transcribed by local/pocketsphinx") for n in reply.notes), reply.notes
    hits = retrieve(keyless_server, index, "forward")
    assert hits.text and hits.text[0].document_id == "memo", hits
    hit = hits.text[0]
    assert "forward" in hit.text and hit.page == 0
    assert 0 <= hit.start_seconds < hit.end_seconds <= len(pcm) / 32000 + 0.5, (hit.start_seconds, hit.end_seconds)


def test_reindexing_replaces_the_document(keyless_server):
    index = unique_index("replace")
    upload(keyless_server, index, b"The walrus sleeps on the ice.", document_id="note")
    assert retrieve(keyless_server, index, "walrus").text
    upload(keyless_server, index, b"The narwhal swims under the ice.", document_id="note", title="Second draft")
    assert not retrieve(keyless_server, index, "walrus").text, "the old chunks are gone"
    hits = retrieve(keyless_server, index, "narwhal")
    assert [(h.document_id, h.title) for h in hits.text] == [("note", "Second draft")]
    documents = stub(keyless_server).ListDocuments(prism_pb2.ListDocumentsRequest(index=index), timeout=RPC_TIMEOUT_S).documents
    assert [d.document_id for d in documents] == ["note"]


def test_delete_and_the_lists(keyless_server):
    index = unique_index("lists")
    a = upload(keyless_server, index, b"Alpha document about herons.")
    assert a.document_id.startswith("doc-"), "the server assigns an id"
    upload(keyless_server, index, b"Beta document about egrets.", document_id="beta", title="Beta")
    s = stub(keyless_server)
    documents = {d.document_id: d for d in s.ListDocuments(prism_pb2.ListDocumentsRequest(index=index), timeout=RPC_TIMEOUT_S).documents}
    assert set(documents) == {a.document_id, "beta"} and documents["beta"].title == "Beta" and documents["beta"].mime_type == "text/plain"
    summary = {i.name: i for i in s.ListIndexes(prism_pb2.ListIndexesRequest(), timeout=RPC_TIMEOUT_S).indexes}[index]
    assert summary.documents == 2 and summary.chunks == 2 and summary.stored_bytes > 0
    assert s.DeleteDocument(prism_pb2.DeleteDocumentRequest(index=index, document_id="beta"), timeout=RPC_TIMEOUT_S).deleted
    assert not s.DeleteDocument(prism_pb2.DeleteDocumentRequest(index=index, document_id="beta"), timeout=RPC_TIMEOUT_S).deleted
    assert not retrieve(keyless_server, index, "egrets").text
    s.DeleteDocument(prism_pb2.DeleteDocumentRequest(index=index, document_id=a.document_id), timeout=RPC_TIMEOUT_S)
    assert index not in {i.name for i in s.ListIndexes(prism_pb2.ListIndexesRequest(), timeout=RPC_TIMEOUT_S).indexes}


# --- answers through a model ------------------------------------------------------------------------


@pytest.mark.parametrize("model,fake", [(OPENAI_MODEL, "openai"), (ANTHROPIC_MODEL, "anthropic")])
def test_query_sends_page_images_and_labelled_chunks_to_the_model(index_server, fakes, model, fake):  # noqa: F811
    index = unique_index("answer")
    upload(index_server, index, pdfmaker.text_pdf(PAGES), document_id="nature", title="Nature notes")
    question = f"Which flowers have one plane of symmetry {uuid.uuid4().hex[:6]}"
    events = list(stub(index_server).Query(prism_pb2.QueryRequest(index=index, question=question, top_k_images=1,
                                                                   route=prism_pb2.Route(model=model)), timeout=RPC_TIMEOUT_S))
    assert kinds(events)[0] == "routed" and kinds(events)[-1] == "finished", kinds(events)
    routed = events[0].routed
    assert routed.model == model
    assert routed.adaptations[0].startswith("retrieved page image [nature p.2] score "), routed.adaptations
    assert any(a.startswith("retrieved text [nature p.2]") for a in routed.adaptations), routed.adaptations
    assert text_of(events), "the answer streams"
    sent = [e for e in fakes[fake].entries() if "path" in e and question in (e.get("text") or "")]
    assert len(sent) == 1, f"one request reached the {fake} fake"
    body = sent[0]["body"]
    assert len(body["images"]) == 1 and max(body["images"][0]["width"], body["images"][0]["height"]) <= 1568
    assert '[nature p.2] "Nature notes" › Chapter Two: Flowers:' in sent[0]["text"]
    assert "Zygomorphic flowers have one plane of symmetry." in sent[0]["text"]
    assert "[manual p.3]" in json.dumps(body), "the system prompt asks for page citations"


def test_pages_are_described_when_a_describe_model_is_set(servers: ServerPool, fakes, session_dir: Path):  # noqa: F811
    config = session_dir / "index-describe.json"
    config.write_text(json.dumps({"index": {"describe_model": OPENAI_MODEL}}))
    server = servers.start("index-describe", ["--config", str(config)], "h2c", env=vendor_env(fakes))
    try:
        index = unique_index("described")
        marker = uuid.uuid4().hex[:8]
        reply = upload(server, index, pdfmaker.text_pdf([["Described page", f"marker {marker}"]]), document_id="d")
        assert not any("describe" in n for n in reply.notes), reply.notes
        asked = [e for e in fakes["openai"].entries() if "path" in e and "Describe this document page" in (e.get("text") or "")]
        assert asked and asked[-1]["body"]["images"], "the page image went to the describe model"
        # The fake's echo is the description: it is searchable, under its own heading.
        hits = retrieve(server, index, "search index headings figures")
        assert hits.text[0].heading == "page description" and hits.text[0].page == 1, hits.text
        assert "You said:" in hits.text[0].text
    finally:
        server.stop()


@pytest.mark.parametrize("model,fake,path", [("openai/text-embedding-3-small", "openai", "/v1/embeddings"),
                                             ("gemini/gemini-embedding-001", "gemini", "/v1beta/models/gemini-embedding-001:batchEmbedContents")])
def test_hybrid_retrieval_with_an_embedding_model(servers: ServerPool, fakes, keyless_server, session_dir: Path,  # noqa: F811
                                                  model, fake, path):
    """The fakes' embeddings (hashed character trigrams, not a model's: no measure of quality) make
    "symmetric" near "symmetry", which the Porter stemmer keeps apart: BM25 alone finds nothing."""
    config = session_dir / f"index-hybrid-{fake}.json"
    config.write_text(json.dumps({"index": {"embed_model": model}}))
    server = servers.start(f"index-hybrid-{fake}", ["--config", str(config)], "h2c", env=vendor_env(fakes))
    try:
        index = unique_index("hybrid")
        reply = upload(server, index, pdfmaker.text_pdf(PAGES), document_id="nature")
        assert f"{reply.chunks} chunk(s) embedded by {model}" in reply.notes, reply.notes
        embedded = [e for e in fakes[fake].entries() if e.get("path") == path
                    and any("Zygomorphic flowers have one plane of symmetry." in t for t in e["input"])]
        assert embedded and embedded[-1]["auth"] == "ok", "the chunks went to the embedding model"

        events = list(stub(server).Query(prism_pb2.QueryRequest(index=index, question="radially symmetric", retrieve_only=True),
                                         timeout=RPC_TIMEOUT_S))
        assert kinds(events) == ["routed", "hits"], kinds(events)
        assert events[0].routed.adaptations[-1] == f"hybrid retrieval: BM25 and {model} embeddings, reciprocal rank fusion"
        assert events[1].hits.text[0].page == 2 and events[1].hits.pages[0].page == 2, events[1].hits
        assert any(e.get("path") == path and e["input"] == ["radially symmetric"] for e in fakes[fake].entries())

        # The same document on the keyless server: keywords alone miss it.
        keyless_index = unique_index("keywords")
        upload(keyless_server, keyless_index, pdfmaker.text_pdf(PAGES), document_id="nature")
        assert not retrieve(keyless_server, keyless_index, "radially symmetric").text
    finally:
        server.stop()


def test_a_keyless_server_answers_only_with_retrieval(keyless_server):
    index = unique_index("keyless")
    upload(keyless_server, index, pdfmaker.text_pdf(PAGES), document_id="nature")
    err = status_of(lambda: stub(keyless_server).Query(prism_pb2.QueryRequest(index=index, question="obsidian"), timeout=RPC_TIMEOUT_S))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
    assert "no model can answer" in err.details() and "retrieve_only" in err.details(), err.details()
    assert retrieve(keyless_server, index, "obsidian").text[0].page == 3


# --- refusals -----------------------------------------------------------------------------------


def test_an_upload_over_the_limit_is_refused(keyless_server):
    err = status_of(lambda: upload(keyless_server, unique_index("big"), b"word " * (SMALL_UPLOAD_LIMIT // 5 + 1000)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "index.max_upload_bytes" in err.details(), err


def test_an_unknown_index_is_not_found(keyless_server):
    err = status_of(lambda: stub(keyless_server).Query(prism_pb2.QueryRequest(index="no-such-index", question="x", retrieve_only=True),
                                                       timeout=RPC_TIMEOUT_S))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "no-such-index" in err.details(), err
    err = status_of(lambda: stub(keyless_server).ListDocuments(prism_pb2.ListDocumentsRequest(index="no-such-index"), timeout=RPC_TIMEOUT_S))
    assert err.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("data,mime,code,words", [
    (bytes(range(256)) * 4, "", grpc.StatusCode.INVALID_ARGUMENT, "not a document"),
    (b"%PDF-1.4\nthis is not really a pdf", "application/pdf", grpc.StatusCode.INVALID_ARGUMENT, "pdf"),
    (pdfmaker.encrypted_pdf(), "application/pdf", grpc.StatusCode.INVALID_ARGUMENT, "encrypted"),
    (png(8, 8) + b"", "", grpc.StatusCode.OK, ""),
])
def test_uploads_that_are_not_documents(keyless_server, data, mime, code, words):
    call = lambda: upload(keyless_server, unique_index("bad"), data, mime=mime)  # noqa: E731
    if code == grpc.StatusCode.OK:
        assert call().images == 1, "a tiny PNG is still an image"
        return
    err = status_of(call)
    assert err.code() == code and words in err.details().lower(), err


def test_a_bad_header_names_the_field(keyless_server):
    err = status_of(lambda: stub(keyless_server).IndexDocument(iter([prism_pb2.IndexDocumentRequest(data=b"x")]), timeout=RPC_TIMEOUT_S))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("header:"), err
    err = status_of(lambda: upload(keyless_server, "bad name!", b"text"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("index:"), err


# --- the CLI ------------------------------------------------------------------------------------


def test_the_cli_adds_queries_lists_and_removes(keyless_server, tmp_path: Path):
    cli = server_binary().parent / "prism"
    if not cli.is_file():
        pytest.fail(f"the prism CLI is missing beside {server_binary()} (run swift build)")
    index = unique_index("cli")
    note = tmp_path / "garden.md"
    note.write_text("# Garden\n\nThe kumquat tree needs sun.\n\n## Pests\n\nAphids like the loquat.\n")

    def prism(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(cli), *args, "--server", keyless_server.target],
                              capture_output=True, text=True, timeout=INDEX_TIMEOUT_S)
        assert (done.returncode == 0) == ok, (args, done.returncode, done.stdout, done.stderr)
        return done

    added = prism("index", "add", index, str(note), "--id", "garden")
    assert "garden.md → garden: 0 pages, 2 chunks, 0 images" in added.stdout, added.stdout
    hits = prism("index", "query", index, "loquat aphids", "--retrieve-only").stdout
    assert hits.startswith("1. [garden] score ") and "Garden › Pests" in hits, hits
    assert f"{index}\t1 documents\t2 chunks" in prism("index", "ls").stdout
    assert prism("index", "ls", index).stdout.startswith("garden\tgarden\ttext/markdown")
    failed = prism("index", "query", index, "what needs sun?", ok=False)
    assert "FAILED_PRECONDITION" in failed.stderr and "retrieve_only" in failed.stderr, failed.stderr
    assert prism("index", "rm", index, "garden").stdout.strip() == "deleted garden"
    assert "no index named" in prism("index", "ls", index, ok=False).stderr
