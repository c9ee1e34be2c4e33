"""The oracle of ProtoJSONOracleTests: Python's google.protobuf.json_format, on random messages of every
prism.v1 message type (requests, events and everything they hold).

  proto_json_oracle.py generate OUT   random messages: one JSON line each, {type, binary (base64), json}
  proto_json_oracle.py check IN       lines {type, expected (base64), got (base64)}: each `got` must parse
                                      to a message equal to `expected`; exits 1 naming the first that does not
"""

from __future__ import annotations

import base64
import json
import math
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from harness import generate_stubs  # noqa: E402

MESSAGES_PER_TYPE = 12
MAX_DEPTH = 3

generate_stubs(Path(tempfile.mkdtemp(prefix="prism-json-oracle-")) / "stubs")
from google.protobuf import json_format, symbol_database  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor as F  # noqa: E402
from prism.v1 import prism_pb2  # noqa: E402

rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 14)
STRINGS = ["", "a", "héllo wörld", "quote \" backslash \\ slash / tab \t newline \n", "emoji 🦊", "\u0001\u001f", "x" * 40]


def scalar(field):
    t = field.type
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return rng.choice([0, 1, -1, 2**31 - 1, -2**31, rng.randint(-1000, 1000)])
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return rng.choice([0, 1, 2**32 - 1, rng.randint(0, 100000)])
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return rng.choice([0, -1, 2**63 - 1, -2**63, 2**53 + 1, rng.randint(-10**12, 10**12)])
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return rng.choice([0, 1, 2**64 - 1, 2**53 + 1, rng.randint(0, 10**15)])
    if t == F.TYPE_DOUBLE:
        return rng.choice([0.0, -1.5, 1e-300, 1e300, 0.1, math.inf, -math.inf, rng.uniform(-1e6, 1e6)])
    if t == F.TYPE_FLOAT:
        return rng.choice([0.0, 0.1, -2.5, 3.4e38, 1e-20, math.inf, rng.uniform(-100, 100)])
    if t == F.TYPE_BOOL:
        return rng.choice([True, False])
    if t == F.TYPE_STRING:
        return rng.choice(STRINGS)
    if t == F.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 3, 17])))
    if t == F.TYPE_ENUM:
        return rng.choice(field.enum_type.values).number
    raise AssertionError(f"unexpected type {t} of {field.full_name}")


def is_repeated(field):
    # protobuf 6 dropped `label` for `is_repeated`; older releases have only `label`.
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == F.LABEL_REPEATED


def fill(message, depth=0):
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and rng.random() < 0.6:
            continue
        if rng.random() < 0.3:
            continue
        is_message = field.type == F.TYPE_MESSAGE
        if is_repeated(field):
            if is_message and field.message_type.GetOptions().map_entry:
                key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
                target = getattr(message, field.name)
                for _ in range(rng.randint(0, 3)):
                    key = scalar(key_field)
                    if value_field.type == F.TYPE_MESSAGE:
                        if depth < MAX_DEPTH:
                            fill(target[key], depth + 1)
                    else:
                        target[key] = scalar(value_field)
            elif is_message:
                if depth < MAX_DEPTH:
                    for _ in range(rng.randint(0, 2)):
                        fill(getattr(message, field.name).add(), depth + 1)
            else:
                getattr(message, field.name).extend(scalar(field) for _ in range(rng.randint(0, 3)))
        elif is_message:
            if depth < MAX_DEPTH:
                fill(getattr(message, field.name), depth + 1)
                getattr(message, field.name).SetInParent()
        else:
            setattr(message, field.name, scalar(field))


def message_class(name):
    return symbol_database.Default().GetSymbol(name)


def all_types():
    def walk(descriptor):
        yield descriptor
        for nested in descriptor.nested_types:
            if not nested.GetOptions().map_entry:
                yield from walk(nested)
    for descriptor in prism_pb2.DESCRIPTOR.message_types_by_name.values():
        yield from walk(descriptor)


def generate(out_path):
    with open(out_path, "w") as out:
        for descriptor in all_types():
            cls = message_class(descriptor.full_name)
            for _ in range(MESSAGES_PER_TYPE):
                message = cls()
                fill(message)
                out.write(json.dumps({"type": descriptor.full_name,
                                      "binary": base64.b64encode(message.SerializeToString()).decode(),
                                      "json": json_format.MessageToJson(message, indent=None)}) + "\n")


def check(in_path):
    for number, line in enumerate(open(in_path), 1):
        case = json.loads(line)
        cls = message_class(case["type"])
        expected, got = cls(), cls()
        expected.ParseFromString(base64.b64decode(case["expected"]))
        got.ParseFromString(base64.b64decode(case["got"]))
        if got != expected:
            print(f"line {number}: {case['type']} from JSON differs:\nexpected {expected}\ngot {got}")
            sys.exit(1)


if __name__ == "__main__":
    {"generate": generate, "check": check}[sys.argv[1]](sys.argv[2])
