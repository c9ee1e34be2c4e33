#!/usr/bin/env python3
"""Document index benchmark, run by hand (not by tests), against a running prism-server:

  (a) IndexDocument time for PDFs with a text layer (default: the PDFs Debian ships under
      /usr/share/doc), pages per second, and stored bytes per page (ListDocuments);
  (b) the same for scanned pages (a PDF of N pages that hold only an image of text, made like
      Tests/interop/pdfmaker.py does), read by the OCR provider the server has (local/tesseract);
  (c) retrieval-only Query latency, p50 and p99 over many questions made of words of the indexed
      text, measured at the client (loopback, one channel, sequential calls).

  (d) with --synthetic-chunks N: an index of N chunks of 220 words drawn from a Zipf-distributed
      vocabulary of 30,000 made-up words (text documents of 100 chunks each), and (c) over it.

Usage: tools/bench/index_bench.py [--server 127.0.0.1:50051] [--pdf FILE]... [--scanned-pages 10] [--queries 200]
                                  [--synthetic-chunks N]
Needs: python3 with grpcio and grpcio-tools (tools/setup.sh), vips (libvips-tools) for the scans.
"""
import argparse, glob, random, statistics, sys, tempfile, time, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "interop"))
import harness  # noqa: E402
import pdfmaker  # noqa: E402

CHUNK = 256 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--pdf", action="append", help="a PDF with a text layer (repeatable)")
    parser.add_argument("--scanned-pages", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--synthetic-chunks", type=int, default=0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="prism-index-bench-"))
    harness.generate_stubs(work / "stubs")
    import grpc
    from prism.v1 import prism_pb2, prism_pb2_grpc
    stub = prism_pb2_grpc.PrismStub(grpc.insecure_channel(args.server, options=[("grpc.max_receive_message_length", 64 << 20)]))
    index = f"bench-{uuid.uuid4().hex[:6]}"

    def upload(data: bytes, doc: str):
        def messages():
            yield prism_pb2.IndexDocumentRequest(header=prism_pb2.IndexDocumentHeader(index=index, document_id=doc))
            for i in range(0, len(data), CHUNK):
                yield prism_pb2.IndexDocumentRequest(data=data[i:i + CHUNK])
        started = time.perf_counter()
        reply = stub.IndexDocument(messages(), timeout=3600)
        return reply, time.perf_counter() - started

    if args.synthetic_chunks:
        synthetic(args, stub, index, upload, prism_pb2)
        return
    pdfs = args.pdf or sorted(glob.glob("/usr/share/doc/**/*.pdf", recursive=True))
    total_pages = total_seconds = 0.0
    for n, path in enumerate(pdfs):
        reply, seconds = upload(Path(path).read_bytes(), f"pdf{n}")
        total_pages += reply.pages
        total_seconds += seconds
        print(f"text layer: {path}: {reply.pages} pages, {reply.chunks} chunks in {seconds:.2f} s ({reply.pages / seconds:.1f} pages/s)")
    if pdfs:
        print(f"text layer total: {total_pages:.0f} pages in {total_seconds:.2f} s ({total_pages / total_seconds:.1f} pages/s)")

    if args.scanned_pages:
        jpg, w, h = pdfmaker.text_image("Scanned invoice 4471 for the pelican colony", work, "scan", dpi=300)
        pdf = pdfmaker.scanned_pdf(jpg.read_bytes(), w, h)
        # N one-page scans, each its own document: every page is rendered and OCR'd.
        seconds = 0.0
        for k in range(args.scanned_pages):
            seconds += upload(pdf, f"scan{k}")[1]
        print(f"scanned (OCR): {args.scanned_pages} pages in {seconds:.2f} s ({args.scanned_pages / seconds:.2f} pages/s)")

    documents = stub.ListDocuments(prism_pb2.ListDocumentsRequest(index=index), timeout=60).documents
    pages = sum(d.pages for d in documents)
    stored = sum(d.stored_bytes for d in documents)
    chunks = sum(d.chunks for d in documents)
    print(f"stored: {stored / 1e6:.1f} MB for {pages} pages ({stored / max(1, pages) / 1e3:.0f} kB per page, mostly the 1568 px JPEG), {chunks} chunks")

    latency(args, stub, index, chunks, prism_pb2)


def synthetic(args, stub, index, upload, prism_pb2) -> None:
    """Indexes N chunks of made-up Zipf-distributed words, then measures retrieval over them."""
    random.seed(11)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(random.choice(letters) for _ in range(random.randint(4, 10))) for _ in range(30_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    per_doc, words_per_chunk = 100, 190  # 190 new words per 220-word chunk (30 overlap)
    started = time.perf_counter()
    docs = (args.synthetic_chunks + per_doc - 1) // per_doc
    for d in range(docs):
        words = random.choices(vocabulary, weights, k=per_doc * words_per_chunk)
        upload(" ".join(words).encode(), f"syn{d}")
    print(f"synthetic: {docs} documents indexed in {time.perf_counter() - started:.1f} s")
    chunks = sum(d.chunks for d in stub.ListDocuments(prism_pb2.ListDocumentsRequest(index=index), timeout=60).documents)
    summary = [i for i in stub.ListIndexes(prism_pb2.ListIndexesRequest(), timeout=60).indexes if i.name == index][0]
    print(f"synthetic: {chunks} chunks, {summary.stored_bytes / 1e6:.0f} MB of text")
    latency(args, stub, index, chunks, prism_pb2, vocabulary[:5000])


def latency(args, stub, index, chunks, prism_pb2, words=None) -> None:
    """Retrieval-only Query p50/p99 over questions of three words from the index's own text."""
    vocabulary = set(words or [])
    for question in () if vocabulary else ("the", "and", "of", "function", "data"):
        hits = stub.Query(prism_pb2.QueryRequest(index=index, question=question, retrieve_only=True, top_k_text=50), timeout=60)
        for event in hits:
            if event.WhichOneof("event") == "hits":
                for hit in event.hits.text:
                    vocabulary.update(w for w in hit.text.split() if w.isalpha() and len(w) > 3)
    words = sorted(vocabulary) or ["data"]
    random.seed(7)
    latencies = []
    for _ in range(args.queries):
        question = " ".join(random.choice(words) for _ in range(3))
        started = time.perf_counter()
        list(stub.Query(prism_pb2.QueryRequest(index=index, question=question, retrieve_only=True), timeout=60))
        latencies.append(1000 * (time.perf_counter() - started))
    latencies.sort()
    print(f"retrieval-only Query over {chunks} chunks: p50 {statistics.median(latencies):.2f} ms, "
          f"p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f} ms ({len(latencies)} queries)")


if __name__ == "__main__":
    main()
