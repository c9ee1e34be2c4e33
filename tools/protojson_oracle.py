#!/usr/bin/env python3
"""Oracle cases for ProtoJSON (Sources/PrismProto/ProtoJSON.swift), from Python's
google.protobuf.json_format: compiles proto/ with grpc_tools.protoc into a temporary descriptor
set, builds seeded random messages of every message type, and writes one JSON object per line:

  {"kind": "message", "type", "binary" (base64 wire), "json" (MessageToJson, json names),
   "variant" (the same message as other accepted JSON spellings), "variantJSON" (json_format's
   output for the variant's parse)}
  {"kind": "reject", "type", "input", "ignoreUnknownFields", "why"}: json_format refuses it
  {"kind": "ignore", "type", "input", "json"}: accepted with ignore_unknown_fields, printed as json

Usage: protojson_oracle.py OUT_FILE [--seed N] [--per-type N]. ProtoJSONOracleTests runs it.
"""
import argparse
import base64
import json
import math
import random
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor as FD

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"

INT32 = {FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32}
UINT32 = {FD.TYPE_UINT32, FD.TYPE_FIXED32}
INT64 = {FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64}
UINT64 = {FD.TYPE_UINT64, FD.TYPE_FIXED64}
# Text with what JSON makes hard: quotes, backslashes, control characters, non-BMP, U+2028.
# No NUL: protobuf-c strings are C strings (an accepted divergence, see ProtoJSONTests).
ALPHABET = list("abcXYZ 019_-\"\\/\n\t\r\b\f\u0001\u001f\u007f") + ["é", "ß", "中", "文", "😀", "👩‍💻", "\u2028", "\ufeff", "𝄞"]


def compile_pool(tmp: Path):
    """Every .proto under proto/ (and imports) into a DescriptorPool, by grpc_tools.protoc."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    out = tmp / "set.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}",
                    "--include_imports", f"--descriptor_set_out={out}", *protos], cwd=PROTO_ROOT, check=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    names = []
    for f in files.file:
        for m in f.message_type:
            collect(f.package + "." + m.name, m, names)
    return pool, names


def collect(name, proto, names):
    if not proto.options.map_entry:
        names.append(name)
    for nested in proto.nested_type:
        collect(name + "." + nested.name, nested, names)


class Generator:
    def __init__(self, rng: random.Random):
        self.r = rng

    def text(self):
        return "".join(self.r.choice(ALPHABET) for _ in range(self.r.choice([1, 2, 5, 12])))

    def scalar(self, f, implicit):
        """A random value of field f; never 0/empty when `implicit` would make it vanish anyway
        less often than wanted, but sometimes the default to check it is left out."""
        r = self.r
        t = f.type
        if t in INT32:
            return r.choice([0, 1, -1, 2**31 - 1, -2**31, r.randint(-2**31, 2**31 - 1)])
        if t in UINT32:
            return r.choice([0, 1, 2**32 - 1, r.randint(0, 2**32 - 1)])
        if t in INT64:
            return r.choice([0, -1, 2**53 + 1, 2**63 - 1, -2**63, r.randint(-2**63, 2**63 - 1), r.randint(-1000, 1000)])
        if t in UINT64:
            return r.choice([0, 1, 2**53 + 1, 2**64 - 1, r.randint(0, 2**64 - 1), r.randint(0, 1000)])
        if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
            # -0.0 is left out: protobuf-c drops it from implicit-presence fields (accepted divergence).
            big = 3.4e38 if t == FD.TYPE_FLOAT else 1.7e308
            return r.choice([0.0, 1.5, -2.25, 0.1, 1e-7, 123456.789, big, -big, 5e-324 if t == FD.TYPE_DOUBLE else 1e-45,
                             math.nan, math.inf, -math.inf, r.uniform(-1e6, 1e6), r.uniform(-1, 1) * 10 ** r.randint(-30, 30)])
        if t == FD.TYPE_BOOL:
            return r.choice([True, False])
        if t == FD.TYPE_STRING:
            return r.choice(["", self.text(), self.text()])
        if t == FD.TYPE_BYTES:
            return bytes(r.randrange(256) for _ in range(r.choice([0, 1, 2, 3, 4, 5, 17])))
        if t == FD.TYPE_ENUM:
            values = [v.number for v in f.enum_type.values]
            # An unknown number sometimes: proto3 enums are open; JSON writes it as a number.
            return r.choice(values + [values[-1] + 7])
        raise ValueError(t)

    def fill(self, msg, depth):
        r = self.r
        d = msg.DESCRIPTOR
        chosen = {o.name: r.choice([None] + list(o.fields)) for o in d.oneofs}
        for f in d.fields:
            if f.containing_oneof is not None:
                if chosen[f.containing_oneof.name] is not f:
                    continue
            elif r.random() < 0.25:
                continue
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                key_f, value_f = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
                m = getattr(msg, f.name)
                for _ in range(r.choice([0, 1, 3])):
                    k = self.scalar(key_f, False)
                    if value_f.message_type is not None:
                        if depth < 3:
                            self.fill(m[k], depth + 1)
                    else:
                        m[k] = self.scalar(value_f, False)
            elif f.is_repeated:
                field = getattr(msg, f.name)
                for _ in range(r.choice([0, 1, 2, 4])):
                    if f.message_type is not None:
                        if depth < 3:
                            self.fill(field.add(), depth + 1)
                    else:
                        field.append(self.scalar(f, False))
            elif f.message_type is not None:
                if depth < 3:
                    getattr(msg, f.name).SetInParent()
                    self.fill(getattr(msg, f.name), depth + 1)
            else:
                setattr(msg, f.name, self.scalar(f, f.containing_oneof is None))

    def variant(self, value, d):
        """The JSON dict `value` of a message of type d, respelled as json_format also accepts."""
        r = self.r
        out = {}
        for key, v in value.items():
            f = next(x for x in d.fields if x.json_name == key)
            name = f.name if r.random() < 0.4 else key
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                value_f = f.message_type.fields_by_name["value"]
                out[name] = {k: self.variant_scalar(x, value_f) for k, x in v.items()}
            elif f.is_repeated:
                out[name] = [self.variant_scalar(x, f) for x in v]
            else:
                out[name] = self.variant_scalar(v, f)
        # null for some absent fields outside oneofs: the default.
        for f in d.fields:
            if f.json_name not in value and f.name not in out and f.containing_oneof is None and r.random() < 0.2:
                out[f.json_name] = None
        return out

    def variant_scalar(self, v, f):
        r = self.r
        t = f.type
        if f.message_type is not None:
            return self.variant(v, f.message_type)
        if t in INT64 | UINT64 and abs(int(v)) < 2**53 and r.random() < 0.5:
            return int(v)
        if t in INT32 | UINT32 and r.random() < 0.3:
            return str(v)
        if t == FD.TYPE_ENUM and isinstance(v, str) and r.random() < 0.4:
            return f.enum_type.values_by_name[v].number
        if t == FD.TYPE_BYTES and r.random() < 0.6:
            raw = base64.b64decode(v)
            text = base64.urlsafe_b64encode(raw).decode() if r.random() < 0.5 else v
            return text.rstrip("=") if r.random() < 0.5 else text
        if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE) and isinstance(v, float) and r.random() < 0.3:
            return repr(v)
        return v


def to_json(msg):
    return json.dumps(shortest_floats(json_format.MessageToDict(msg), msg.DESCRIPTOR), ensure_ascii=False)


def shortest_float(v):
    """json_format prints a float field with at least 6 significant digits (1.4013e-45); ProtoJSON
    prints the shortest decimal that reads back as the same float (1e-45). Both denote the same
    float, so the oracle's value is respelled the shortest way before comparing as doubles."""
    if not isinstance(v, float) or not math.isfinite(v):
        return v
    f32 = struct.unpack("f", struct.pack("f", v))[0]
    for digits in range(1, 10):
        text = "%.*g" % (digits, f32)
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            return float(text)
    return v


def shortest_floats(value, d):
    """`value`, a MessageToDict result of type d, with every float field's number shortest."""
    for key, v in value.items():
        f = next(x for x in d.fields if x.json_name == key)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value_f = f.message_type.fields_by_name["value"]
            if value_f.message_type is not None:
                for x in v.values():
                    shortest_floats(x, value_f.message_type)
            elif value_f.type == FD.TYPE_FLOAT:
                value[key] = {k: shortest_float(x) for k, x in v.items()}
        elif f.message_type is not None:
            for x in (v if f.is_repeated else [v]):
                shortest_floats(x, f.message_type)
        elif f.type == FD.TYPE_FLOAT:
            value[key] = [shortest_float(x) for x in v] if f.is_repeated else shortest_float(v)
    return value


def rejects(cls, text, ignore=False):
    try:
        json_format.Parse(text, cls(), ignore_unknown_fields=ignore)
        return False
    except json_format.ParseError:
        return True


def bad_inputs(d, r):
    """JSON documents json_format refuses for type d, with why; each must be refused by ProtoJSON too."""
    out = [({"zzNoSuchField": 1}, "unknown field")]
    for f in d.fields:
        key = f.json_name
        if f.is_repeated:
            out.append(({key: {"x": 1} if not (f.message_type and f.message_type.GetOptions().map_entry) else [1]}, "repeated/map of the wrong kind"))
            if not (f.message_type and f.message_type.GetOptions().map_entry):
                out.append(({key: [None]}, "null element"))
            continue
        if f.message_type is not None:
            out.append(({key: "text"}, "message as a string"))
            out.append(({key: {"zzNoSuchField": True}}, "nested unknown field"))
        elif f.type == FD.TYPE_BOOL:
            out.append(({key: "true"}, "bool as a string"))
        elif f.type == FD.TYPE_STRING:
            out.append(({key: 5}, "string as a number"))
        elif f.type in INT32:
            out.append(({key: 2**31}, "int32 out of range"))
            out.append(({key: 1.5}, "fraction for an integer"))
        elif f.type in UINT32:
            out.append(({key: -1}, "negative uint32"))
        elif f.type in INT64:
            out.append(({key: str(2**63)}, "int64 out of range"))
        elif f.type in UINT64:
            out.append(({key: str(2**64)}, "uint64 out of range"))
        elif f.type == FD.TYPE_FLOAT:
            out.append(({key: 1e39}, "float out of range"))
        elif f.type == FD.TYPE_ENUM:
            out.append(({key: "NO_SUCH_VALUE_X"}, "unknown enum name"))
    for o in d.oneofs:
        if len(o.fields) >= 2:
            a, b = o.fields[0], o.fields[1]
            out.append(({a.json_name: sample(a), b.json_name: sample(b)}, "two members of a oneof"))
    return out


def sample(f):
    if f.message_type is not None:
        return {}
    return {FD.TYPE_STRING: "x", FD.TYPE_BYTES: "AA==", FD.TYPE_BOOL: True}.get(f.type, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--per-type", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    gen = Generator(rng)
    with tempfile.TemporaryDirectory() as tmp:
        pool, names = compile_pool(Path(tmp))
    counts = {"message": 0, "reject": 0, "ignore": 0}
    with open(args.out, "w", encoding="utf-8") as out:
        def emit(case):
            counts[case["kind"]] += 1
            out.write(json.dumps(case, ensure_ascii=False) + "\n")

        for name in names:
            d = pool.FindMessageTypeByName(name)
            cls = message_factory.GetMessageClass(d)
            for _ in range(args.per_type):
                msg = cls()
                gen.fill(msg, 0)
                wire = msg.SerializeToString(deterministic=True)
                variant = json.dumps(gen.variant(json_format.MessageToDict(msg), d), ensure_ascii=rng.random() < 0.5)
                emit({"kind": "message", "type": name, "binary": base64.b64encode(wire).decode(),
                      "json": to_json(msg), "variant": variant, "variantJSON": to_json(json_format.Parse(variant, cls()))})
            for bad, why in bad_inputs(d, rng):
                text = json.dumps(bad)
                if not rejects(cls, text):
                    continue  # json_format takes it; not an oracle case (see ProtoJSONTests for ours)
                emit({"kind": "reject", "type": name, "input": text, "ignoreUnknownFields": False, "why": why})
                if rejects(cls, text, ignore=True):
                    emit({"kind": "reject", "type": name, "input": text, "ignoreUnknownFields": True, "why": why})
                elif why in ("unknown field", "nested unknown field", "unknown enum name"):
                    # (json_format with ignore_unknown_fields also takes {"msg": "text"}, reading
                    # the string's characters as unknown field names; ProtoJSON refuses that.)
                    parsed = json_format.Parse(text, cls(), ignore_unknown_fields=True)
                    emit({"kind": "ignore", "type": name, "input": text, "json": to_json(parsed)})
        # proto2 (explicit presence, has_ flags, defaults): Prism's own descriptor set as a
        # google.protobuf.FileDescriptorSet, a type outside that set (names computed, no maps).
        wire = (ROOT / "Sources/PrismProtoC/generated/descriptor_set.pb").read_bytes()
        fds = descriptor_pb2.FileDescriptorSet.FromString(wire)
        emit({"kind": "message", "type": "google.protobuf.FileDescriptorSet", "binary": base64.b64encode(wire).decode(),
              "json": to_json(fds), "variant": to_json(fds), "variantJSON": to_json(fds)})
    print(json.dumps({"types": len(names), **counts}))


if __name__ == "__main__":
    main()
