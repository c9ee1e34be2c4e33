#!/usr/bin/env python3
"""Retrieval quality of the document index, run by hand (not by tests): recall@5 over questions of
our own about two PDFs Debian ships (shared-mime-info's spec, libtasn1's manual). The questions are
paraphrases, not quotes. A question's gold pages are those whose text layer holds its answer phrase,
read with `prism media pages`, so the set stays right if a package update moves a page. A hit is a
gold page among the first five page hits of a retrieval-only Query.

Usage: tools/bench/index_recall.py [--server 127.0.0.1:50051] [--prism PATH]
Run it against a server without index.embed_model (BM25), then one with it (hybrid); it prints
which mode the server used. The fake vendors' embeddings are no quality measure.
"""
import argparse, subprocess, sys, tempfile, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "interop"))
import harness  # noqa: E402

DOCS = {
    "smi": "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
    "tasn": "/usr/share/doc/libtasn1-doc/libtasn1.pdf",
}
# (document, question, answer phrase in the page text)
QUESTIONS = [
    ("smi", "What must an application run after it changes its package file?", "update-mime-database command"),
    ("smi", "What other name is the MIDI audio type known by?", "audio/x-midi"),
    ("smi", "In which byte order are the numbers of the magic file written?", "big-endian"),
    ("smi", "Which string does the magic file start with?", "MIME-Magic"),
    ("smi", "Which file holds the globs, magic and aliases in one binary file that can be memory mapped?", "mmappable"),
    ("smi", "How are the lines of the globs2 file sorted?", "ordered by glob weight"),
    ("tasn", "How do I decode DER data into an ASN.1 structure?", "int asn1_der_decoding ("),
    ("tasn", "How do I encode a structure to DER?", "int asn1_der_coding ("),
    ("tasn", "Which function gives a readable message for an error code?", "asn1_strerror ("),
    ("tasn", "How do I create a new element from the definitions?", "int asn1_create_element ("),
    ("tasn", "Which tool turns an ASN.1 definitions file into a C array?", "reads a single file with ASN.1 definitions"),
    ("tasn", "How do I set the value of an element?", "int asn1_write_value ("),
    ("tasn", "How do I read the value of an element?", "asn1_read_value ("),
]


def page_texts(prism: str, pdf: str, work: Path) -> dict[int, str]:
    out = work / Path(pdf).stem
    subprocess.run([prism, "media", "pages", pdf, "-o", str(out), "--dpi", "10"], check=True, capture_output=True)
    return {int(p.stem.split("-")[1]): p.read_text(errors="replace") for p in out.glob("page-*.txt")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--prism", default=str(ROOT / ".build" / "debug" / "prism"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prism-index-recall-"))
    harness.generate_stubs(work / "stubs")
    import grpc
    from prism.v1 import prism_pb2, prism_pb2_grpc
    stub = prism_pb2_grpc.PrismStub(grpc.insecure_channel(args.server))
    index = f"recall-{uuid.uuid4().hex[:6]}"
    texts = {}
    for doc, pdf in DOCS.items():
        texts[doc] = page_texts(args.prism, pdf, work)
        data = Path(pdf).read_bytes()
        stub.IndexDocument(iter([prism_pb2.IndexDocumentRequest(header=prism_pb2.IndexDocumentHeader(index=index, document_id=doc)),
                                 prism_pb2.IndexDocumentRequest(data=data)]), timeout=600)
    found, mode = 0, ""
    for doc, question, phrase in QUESTIONS:
        gold = {page for page, text in texts[doc].items() if phrase in text}
        assert gold, f"no page of {doc} holds {phrase!r}: the eval set is stale"
        events = list(stub.Query(prism_pb2.QueryRequest(index=index, question=question, retrieve_only=True, top_k_images=5), timeout=60))
        mode = events[0].routed.adaptations[-1]
        pages = [(h.document_id, h.page) for e in events if e.WhichOneof("event") == "hits" for h in e.hits.pages]
        hit = any((doc, page) in pages for page in gold)
        found += hit
        print(f"{'hit ' if hit else 'MISS'} {question!r}: gold {doc} p.{sorted(gold)}, top 5 {pages}")
    print(f"{mode}: recall@5 {found}/{len(QUESTIONS)} = {found / len(QUESTIONS):.2f}")


if __name__ == "__main__":
    main()
