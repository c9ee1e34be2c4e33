#!/usr/bin/env python3
"""The Python grpcio benchmark peer (tools/bench/grpc/run.sh): serves grpc.health.v1.Health/Check
and an interop-style grpc.testing.TestService/StreamingOutputCall over h2c, through grpcio's
generic handlers with hand-written message coders, so no code generation is needed.
Usage: python-peer.py PORT
"""
import sys
from concurrent import futures

import grpc

SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def read_varint(data, index):
    """Decodes the protobuf varint at data[index:]; returns (value, index after it)."""
    value = shift = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index
        shift += 7


def encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def response_sizes(request):
    """The `size` of each ResponseParameters entry (field 2) of a StreamingOutputCallRequest."""
    sizes, index = [], 0
    while index < len(request):
        key, index = read_varint(request, index)
        wire_type = key & 7
        if wire_type == 0:
            _, index = read_varint(request, index)
            continue
        if wire_type != 2:
            raise ValueError("unexpected wire type %d" % wire_type)
        length, index = read_varint(request, index)
        entry, index = request[index:index + length], index + length
        if key >> 3 != 2:
            continue
        size, at = 0, 0
        while at < len(entry):
            entry_key, at = read_varint(entry, at)
            value, at = read_varint(entry, at)  # ResponseParameters has varint fields only here
            if entry_key == 0x08:
                size = value
        sizes.append(size)
    return sizes


def zero_payload_response(size):
    """StreamingOutputCallResponse{payload: Payload{body: `size` zero bytes}}."""
    payload = (b"\x12" + encode_varint(size) + bytes(size)) if size else b""
    return b"\x0a" + encode_varint(len(payload)) + payload


def check(request, context):
    return SERVING


def streaming_output_call(request, context):
    for size in response_sizes(request):
        yield zero_payload_response(size)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python-peer.py PORT")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {"Check": grpc.unary_unary_rpc_method_handler(check)}),
        grpc.method_handlers_generic_handler(
            "grpc.testing.TestService",
            {"StreamingOutputCall": grpc.unary_stream_rpc_method_handler(streaming_output_call)}),
    ])
    address = "127.0.0.1:" + sys.argv[1]
    server.add_insecure_port(address)
    server.start()
    print("python-peer listening on %s (h2c)" % address, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
