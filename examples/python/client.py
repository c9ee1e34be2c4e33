#!/usr/bin/env python3
"""A Python client of Prism (grpcio): sends an image and a question with Generate and prints the
answer as it streams, then the usage. Stubs are generated from proto/ by grpcio-tools on first run
into a build folder ($PRISM_EXAMPLES_BUILD/python, else /tmp/prism-examples/python), then reused.

usage: client.py [--server HOST:PORT] [--model provider/model] IMAGE QUESTION"""

import argparse
import mimetypes
import os
import subprocess
import sys
from pathlib import Path

import grpc

PROTO = Path(__file__).resolve().parents[2] / "proto"
BUILD = Path(os.environ.get("PRISM_EXAMPLES_BUILD", "/tmp/prism-examples")) / "python"


def stubs():
    """prism_pb2 and prism_pb2_grpc, generated when missing or older than prism.proto."""
    source = PROTO / "prism" / "v1" / "prism.proto"
    generated = BUILD / "prism" / "v1" / "prism_pb2_grpc.py"
    if not generated.exists() or generated.stat().st_mtime < source.stat().st_mtime:
        BUILD.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO}", f"--python_out={BUILD}",
                        f"--grpc_python_out={BUILD}", "prism/v1/prism.proto"], check=True)
    sys.path.insert(0, str(BUILD))
    from prism.v1 import prism_pb2, prism_pb2_grpc
    return prism_pb2, prism_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description="Ask Prism about an image.")
    parser.add_argument("--server", default=os.environ.get("PRISM_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--model", default="", help="provider/model (default: any capable provider)")
    parser.add_argument("image")
    parser.add_argument("question")
    args = parser.parse_args()
    pb, pb_grpc = stubs()

    data = Path(args.image).read_bytes()
    # The server sniffs the bytes; the declared type is only a hint.
    media = pb.Media(data=data, mime_type=mimetypes.guess_type(args.image)[0] or "", name=Path(args.image).name)
    request = pb.GenerateRequest(
        messages=[pb.Message(role=pb.ROLE_USER, parts=[pb.Part(media=media), pb.Part(text=args.question)])],
        route=pb.Route(model=args.model))
    metadata = [("authorization", "Bearer " + os.environ["PRISM_API_KEY"])] if os.environ.get("PRISM_API_KEY") else []

    with grpc.insecure_channel(args.server) as channel:  # plaintext h2c, as prism-server serves by default
        try:
            for event in pb_grpc.PrismStub(channel).Generate(request, timeout=120, metadata=metadata):
                kind = event.WhichOneof("event")
                if kind == "routed":
                    print(f"routed: {event.routed.model}")  # "provider/model"
                    for step in event.routed.adaptations:
                        print(f"adapted: {step}")
                elif kind == "text":
                    print(event.text.text, end="", flush=True)  # printed as it arrives
                elif kind == "usage":
                    u = event.usage
                    print(f"\nusage: {u.input_tokens} input tokens, {u.output_tokens} output tokens, "
                          f"${u.cost_usd_micros / 1e6:.6f}")
                elif kind == "finished":
                    print(f"finished: {pb.StopReason.Name(event.finished.stop_reason)}")
        except grpc.RpcError as err:
            # The code's name and the message, which names what was wrong.
            print(f"client.py: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
