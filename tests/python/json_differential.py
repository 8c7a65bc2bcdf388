"""The differential test of protogate's proto3 JSON against the reference implementation,
Python protobuf's json_format (tests/json_differential.rs runs it; scripts/test runs that).

It compiles proto/testdata/differential.proto (protobuf's conformance message
TestAllTypesProto3 behind an echo service, and `Plain`, the part of it that the compiled
codec reads with pbjson), starts an echo upstream (grpcio, in this process, recording the
bytes it receives) and two gateways in front of it (the real binary: `--schema compiled`
and `--schema descriptors:` of the same protos), then, for random messages with edge values
made from a fixed seed:

- body: the reference's JSON of each message (json_format.MessageToJson), sent in batches,
  must reach the upstream as the same message (proto equality, NaN-aware, -0 kept) and
  come back as the reference's JSON of that message (always_print_fields_with_no_presence),
  compared as JSON values with every number compared exactly;
- query and path: the scalar fields as query parameters (and seven of them as path
  segments) must reach the upstream as the same message;
- refusals: inputs that json_format.Parse refuses must be refused (400) by both gateways.

Usage: json_differential.py GATEWAY_BINARY [--count N] [--seed S]
Prints one JSON summary line last; exits 1 on any difference.
"""
import argparse
import base64
import http.client
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from concurrent import futures

import grpc
from grpc_tools import protoc
import grpc_tools
from google.protobuf import json_format

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICE = "protogate.differential.v1.Differential"
F32_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]


def compile_protos(out):
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = ["testdata/differential.proto", "testdata/conformance/test_messages_proto3.proto"]
    descriptors = os.path.join(out, "differential.binpb")
    args = ["protoc", f"-I{ROOT}/proto", f"-I{include}", f"--python_out={out}",
            f"--descriptor_set_out={descriptors}", "--include_imports"] + files
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    return descriptors


# ---- the echo upstream ----------------------------------------------------------------

class Echo:
    def __init__(self):
        self.received = []
        self.lock = threading.Lock()

    def handler(self, request, _context):
        with self.lock:
            self.received.append(request)
        return request

    def start(self):
        methods = {name: grpc.unary_unary_rpc_method_handler(self.handler)
                   for name in ("Echo", "EchoBatch", "EchoPlain", "EchoPlainBatch")}
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, port

    def take(self):
        with self.lock:
            got, self.received = self.received, []
        return got


# ---- the gateways ---------------------------------------------------------------------

def start_gateway(binary, upstream_port, schema):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROTOGATE_") and k != "RUST_LOG"}
    env["PROTOGATE_WORKER_THREADS"] = "1"
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--upstream", f"http://127.0.0.1:{upstream_port}",
         "--schema", schema, "--log-format", "json"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    for line in proc.stdout:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "listening":
            host, port = record["addr"].rsplit(":", 1)
            # Keep reading the log, so that the gateway never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(port)
    sys.exit(f"gateway ({schema}) exited before listening: {proc.wait()}")


class Client:
    def __init__(self, name, port):
        self.name, self.port = name, port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, method, path, body=None):
        headers = {"content-type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                reply = self.conn.getresponse()
                return reply.status, reply.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


# ---- random messages with edge values -------------------------------------------------

def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


class Generator:
    INT32 = [0, 1, -1, 2**31 - 1, -2**31, 7, -42]
    INT64 = [0, 1, -1, 2**63 - 1, -2**63, 2**53 + 1, -(2**53 + 1)]
    UINT32 = [0, 1, 2**32 - 1, 2**31]
    UINT64 = [0, 1, 2**64 - 1, 2**63, 2**53 + 1]
    FLOAT = [0.0, -0.0, F32_MAX, -F32_MAX, f32(0x00800000), f32(1), -f32(1), f32(0x3DCCCCCD), 3.4e38,
             1.5, math.nan, math.inf, -math.inf, 16777217.0, 1e-10]
    DOUBLE = [0.0, -0.0, sys.float_info.max, -sys.float_info.max, sys.float_info.min, 5e-324, -5e-324,
              1.2345678901234567e100, 0.1, 1 / 3, math.nan, math.inf, -math.inf, 2.0**53 + 2, 1e-300]
    STRING = ["", "a", "h\u00e9llo", "\u65e5\u672c\u8a9e", "emoji \U0001F600", "quote\" back\\slash",
              "nul \u0000 tab \t nl \n", "comma,list", "a&b=c?d#e%f+g", "/slash/", "\u2028\u2029", " "]
    BYTES = [b"", b"\x00", b"\xff\xfe\xfd", b"hello", bytes(range(256))[:40], b"\xfb\xff"]

    def __init__(self, rng, pb):
        self.rng, self.pb = rng, pb

    def pick(self, pool, random_one):
        return self.rng.choice(pool) if self.rng.random() < 0.7 else random_one()

    def int32(self):
        return self.pick(self.INT32, lambda: self.rng.randint(-2**31, 2**31 - 1))

    def int64(self):
        return self.pick(self.INT64, lambda: self.rng.randint(-2**63, 2**63 - 1))

    def uint32(self):
        return self.pick(self.UINT32, lambda: self.rng.randint(0, 2**32 - 1))

    def uint64(self):
        return self.pick(self.UINT64, lambda: self.rng.randint(0, 2**64 - 1))

    def float(self):
        def any_finite():
            while True:
                v = f32(self.rng.getrandbits(32))
                if math.isfinite(v):
                    return v
        return self.pick(self.FLOAT, any_finite)

    def double(self):
        def any_finite():
            while True:
                v = struct.unpack("<d", struct.pack("<Q", self.rng.getrandbits(64)))[0]
                if math.isfinite(v):
                    return v
        return self.pick(self.DOUBLE, any_finite)

    def string(self):
        def any_text():
            return "".join(chr(self.rng.choice([self.rng.randint(32, 126), self.rng.randint(0xA0, 0xD7FF),
                                                self.rng.randint(0x10000, 0x10FFFF)]))
                           for _ in range(self.rng.randint(0, 8)))
        return self.pick(self.STRING, any_text)

    def bytes(self):
        return self.pick(self.BYTES, lambda: self.rng.randbytes(self.rng.randint(0, 12)))

    def enum(self, known):
        # proto3 enums are open: numbers no descriptor names, int32 extremes included.
        return self.rng.choice(known + [99, -3852, 2**31 - 1, -2**31]) if self.rng.random() < 0.25 \
            else self.rng.choice(known)

    def value_of(self, field, depth):
        t = field.type
        fd = field
        if t == fd.TYPE_MESSAGE:
            return None
        if t in (fd.TYPE_INT32, fd.TYPE_SINT32, fd.TYPE_SFIXED32):
            return self.int32()
        if t in (fd.TYPE_INT64, fd.TYPE_SINT64, fd.TYPE_SFIXED64):
            return self.int64()
        if t in (fd.TYPE_UINT32, fd.TYPE_FIXED32):
            return self.uint32()
        if t in (fd.TYPE_UINT64, fd.TYPE_FIXED64):
            return self.uint64()
        if t == fd.TYPE_FLOAT:
            return self.float()
        if t == fd.TYPE_DOUBLE:
            return self.double()
        if t == fd.TYPE_BOOL:
            return self.rng.random() < 0.5
        if t == fd.TYPE_STRING:
            return self.string()
        if t == fd.TYPE_BYTES:
            return self.bytes()
        if t == fd.TYPE_ENUM:
            numbers = [v.number for v in field.enum_type.values]
            if field.enum_type.full_name == "google.protobuf.NullValue":
                return 0
            return self.enum(numbers)
        raise AssertionError(t)

    def json_value(self, depth):
        kinds = ["null", "bool", "number", "string"] + (["list", "struct"] if depth < 3 else [])
        kind = self.rng.choice(kinds)
        if kind == "null":
            return None
        if kind == "bool":
            return self.rng.random() < 0.5
        if kind == "number":
            v = self.double()
            return v if math.isfinite(v) else 0.5
        if kind == "string":
            return self.string()
        if kind == "list":
            return [self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        return {self.string(): self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))}

    def well_known(self, message, depth):
        name = message.DESCRIPTOR.full_name
        pb = self.pb
        if name == "google.protobuf.Timestamp":
            message.seconds = self.rng.choice([0, -62135596800, 253402300799, self.rng.randint(-62135596800, 253402300799)])
            message.nanos = self.rng.choice([0, 1, 1000, 1000000, 123456789, 999999999])
        elif name == "google.protobuf.Duration":
            seconds = self.rng.choice([0, 1, -1, 315576000000, -315576000000, self.rng.randint(-315576000000, 315576000000)])
            nanos = self.rng.choice([0, 1, 1000, 1000000, 999999999])
            if seconds < 0 or (seconds == 0 and self.rng.random() < 0.5):
                nanos = -nanos
            message.seconds, message.nanos = seconds, nanos
        elif name == "google.protobuf.FieldMask":
            names = ["foo", "foo_bar", "foo_bar.baz_qux", "a", "optional_int32", "x.y.z"]
            message.paths.extend(self.rng.sample(names, self.rng.randint(0, 3)))
        elif name == "google.protobuf.Struct":
            message.update({self.string(): self.json_value(1) for _ in range(self.rng.randint(0, 3))})
        elif name == "google.protobuf.ListValue":
            message.extend([self.json_value(1) for _ in range(self.rng.randint(0, 3))])
        elif name == "google.protobuf.Value":
            json_format.ParseDict(self.json_value(0), message)
        elif name == "google.protobuf.Any":
            inner_kinds = ["ForeignMessage", "Duration", "Timestamp", "FieldMask", "Int32Value", "Struct",
                           "Value", "Empty"] + (["TestAllTypesProto3"] if depth < 2 else [])
            kind = self.rng.choice(inner_kinds)
            if kind == "ForeignMessage":
                inner = pb.ForeignMessage(c=self.int32())
            elif kind == "TestAllTypesProto3":
                inner = self.message(pb.TestAllTypesProto3(), depth + 1, plain=False)
            else:
                from google.protobuf import (duration_pb2, empty_pb2, field_mask_pb2, struct_pb2,
                                             timestamp_pb2, wrappers_pb2)
                inner = {"Duration": duration_pb2.Duration, "Timestamp": timestamp_pb2.Timestamp,
                         "FieldMask": field_mask_pb2.FieldMask, "Int32Value": wrappers_pb2.Int32Value,
                         "Struct": struct_pb2.Struct, "Value": struct_pb2.Value,
                         "Empty": empty_pb2.Empty}[kind]()
                if kind == "Int32Value":
                    inner.value = self.int32()
                elif kind == "Value":
                    json_format.ParseDict(self.json_value(1), inner)
                elif kind != "Empty":
                    self.well_known(inner, depth + 1)
            message.Pack(inner)
        elif name == "google.protobuf.Empty":
            pass
        elif name.endswith("Value"):  # the wrappers
            value_field = message.DESCRIPTOR.fields_by_name["value"]
            message.value = self.value_of(value_field, depth)
        else:
            raise AssertionError(name)

    def fill_message_field(self, sub, depth, plain):
        name = sub.DESCRIPTOR.full_name
        if name.startswith("google.protobuf."):
            self.well_known(sub, depth)
        else:
            self.message(sub, depth + 1, plain)

    def message(self, message, depth=0, plain=False):
        """Fills `message` with a random subset of its fields."""
        fields = message.DESCRIPTOR.fields
        share = 0.5 if depth == 0 else 0.15
        oneof_done = set()
        for field in fields:
            if self.rng.random() > share:
                continue
            oneof = field.containing_oneof
            if oneof is not None:
                if oneof.name in oneof_done:
                    continue
                oneof_done.add(oneof.name)
            if field.message_type is not None and depth >= 3 and field.message_type.full_name.startswith("protobuf_test"):
                continue
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            if is_map:
                key_field = field.message_type.fields_by_name["key"]
                value_field = field.message_type.fields_by_name["value"]
                target = getattr(message, field.name)
                for _ in range(self.rng.randint(1, 3)):
                    key = self.value_of(key_field, depth)
                    if value_field.message_type is not None:
                        self.fill_message_field(target[key], depth, plain)
                    else:
                        target[key] = self.value_of(value_field, depth)
            elif field.is_repeated:
                target = getattr(message, field.name)
                for _ in range(self.rng.randint(1, 3)):
                    if field.message_type is not None:
                        self.fill_message_field(target.add(), depth, plain)
                    else:
                        target.append(self.value_of(field, depth))
            elif field.message_type is not None:
                sub = getattr(message, field.name)
                sub.SetInParent()
                self.fill_message_field(sub, depth, plain)
            else:
                setattr(message, field.name, self.value_of(field, depth))
        return message


# ---- comparison -----------------------------------------------------------------------

def as_f32(x):
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.inf


def python_float(x32):
    """How json_format prints a float: at least 6 significant digits (ToShortestFloat)."""
    precision = 6
    while as_f32(float("{0:.{1}g}".format(x32, precision))) != x32:
        precision += 1
    return float("{0:.{1}g}".format(x32, precision))


def is_shortest_float(b, x32):
    """Whether `b` reads back as the float32 `x32` with the fewest significant digits that
    any decimal needs for it (Go and C++ print such a form; of two, either)."""
    for precision in range(1, 10):
        if as_f32(float("{0:.{1}g}".format(x32, precision))) == x32:
            return as_f32(b) == x32 and float("{0:.{1}g}".format(b, precision)) == b
    return False


# Differences that the README's deviation list explains, counted, not failed.
DEVIATIONS = {}


def deviation(name):
    DEVIATIONS[name] = DEVIATIONS.get(name, 0) + 1
    return True


def same_number(a, b, zero_ok):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if a == b:
            if math.copysign(1, a) == math.copysign(1, b):
                return True
            return deviation("-0 as 0 (a float field without presence, a wrapper or a map value)")
        a32, b32 = as_f32(a), as_f32(b)
        if math.isinf(a32):
            return False
        # A float32: json_format prints at least 6 digits (1.4013e-45) where Go and C++
        # print the shortest form (1e-45), which the gateway must print.
        if a32 == b32 and a == python_float(a32) and is_shortest_float(b, b32):
            return deviation("float printed shortest where json_format prints 6 digits or more")
        return False
    return a == b and type(a) is type(b)


def same(a, b, zero_ok=False):
    """JSON values (or MessageToDict trees) equal, numbers exactly: NaN equals NaN; -0 for 0 is
    counted as the documented deviation (prost and prost-reflect leave a value equal to the
    default out of the bytes, and -0.0 == 0.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return same_number(a, b, zero_ok)
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("@type", "").endswith("/google.protobuf.Empty") and b.get("value") == {} and "value" not in a:
            b = {k: v for k, v in b.items() if k != "value"}
            deviation("Any of Empty printed with \"value\": {} as Go and C++ print it")
        if a.keys() != b.keys():
            return False
        return all(same(a[k], b[k], zero_ok or "rapper" in k or k.startswith("map")
                        or a.get("@type", "").endswith("Value")) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, zero_ok) for x, y in zip(a, b))
    return a == b


def same_tree(a, b):
    """`same`, after a fast path: identical JSON text (which tells true from 1, 1 from 1.0 and
    -0.0 from 0.0, and prints NaN alike) is equal without a walk."""
    if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True):
        return True
    return same(a, b)


def first_difference(a, b, path=""):
    """The path of the first difference between two trees, and the two values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if not same(a.get(k), b.get(k)):
                return first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if not same(x, y):
                return first_difference(x, y, f"{path}[{i}]")
    return {"path": path, "reference": a, "gateway": b}


def canonical(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def reference_json(message, minimal=True):
    if minimal:
        return json_format.MessageToJson(message, indent=None)
    return json_format.MessageToJson(message, indent=None, always_print_fields_with_no_presence=True)


# ---- query strings and paths ----------------------------------------------------------

PATH_FIELDS = ["optional_int32", "optional_uint64", "optional_float", "optional_double", "optional_bool",
               "optional_nested_enum", "optional_string"]


def text_of(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json.dumps(value)
    return str(value)


def query_of(message, pb_fields):
    """The message's scalar fields (singular, repeated, wrappers, Timestamp, Duration,
    FieldMask) as query pairs, with json names; and the message they make."""
    as_json = json.loads(reference_json(message))
    pairs = []
    kept = {}
    for field in pb_fields:
        value = as_json.get(field.json_name)
        if value is None:
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            continue
        if field.message_type is not None:
            name = field.message_type.full_name
            scalar_wkt = name.endswith("Value") and name not in ("google.protobuf.Value", "google.protobuf.ListValue") \
                or name in ("google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask")
            if not scalar_wkt or field.is_repeated:
                continue
            if name == "google.protobuf.FieldMask" and value == "":
                continue
        if field.is_repeated:
            pairs.extend((field.json_name, text_of(v)) for v in value)
        else:
            pairs.append((field.json_name, text_of(value)))
        kept[field.json_name] = value
    return urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote), kept


def only(message, json_names):
    """A copy of `message` with only the fields named (by json name) set. (Not through
    json_format.ParseDict: it refuses the largest float, which it prints itself.)"""
    copy = type(message)()
    copy.CopyFrom(message)
    for field in message.DESCRIPTOR.fields:
        if field.json_name not in json_names:
            copy.ClearField(field.name)
    return copy


def path_of(message):
    """Seven scalars as path segments, when all of them are set and the string is not empty."""
    as_json = json.loads(reference_json(message, minimal=False))
    segments, kept = [], {}
    for name in PATH_FIELDS:
        field = message.DESCRIPTOR.fields_by_name[name]
        value = as_json[field.json_name]
        if name == "optional_string" and value == "":
            return None, None
        segments.append(urllib.parse.quote(text_of(value), safe=""))
        kept[field.json_name] = value
    return "/".join(segments), kept


# ---- refusals -------------------------------------------------------------------------

REFUSALS = [
    '{"optionalInt32": 2147483648}', '{"optionalInt32": "-2147483649"}', '{"optionalUint32": -1}',
    '{"optionalInt64": "9223372036854775808"}', '{"optionalUint64": "18446744073709551616"}',
    '{"optionalInt32": 1.5}', '{"optionalInt32": "1.5"}', '{"optionalInt32": "abc"}',
    '{"optionalInt32": true}', '{"optionalInt32": " 1"}', '{"optionalInt64": 1e300}',
    '{"optionalFloat": 3.5e38}', '{"optionalFloat": -1e39}', '{"optionalDouble": 1e400}',
    '{"optionalDouble": "nan"}', '{"optionalFloat": "0x10"}', '{"optionalDouble": ""}',
    '{"optionalBool": "true"}', '{"optionalBool": 1}', '{"optionalString": 1}', '{"optionalString": true}',
    '{"optionalBytes": "!!!"}', '{"optionalBytes": 5}', '{"optionalNestedEnum": "NOPE"}',
    '{"optionalNestedEnum": 2147483648}', '{"optionalNestedEnum": 1.5}', '{"optionalNestedEnum": true}',
    '{"unknownField": 1}', '{"optionalInt32": 1, "optional_int32": 2}', '{"optionalInt32": 1, "optionalInt32": 2}',
    '{"oneofUint32": 1, "oneofString": "x"}', '{"repeatedInt32": 1}', '{"repeatedInt32": [null]}',
    '{"repeatedInt32": ["x"]}', '{"mapInt32Int32": {"x": 1}}', '{"mapBoolBool": {"yes": true}}',
    '{"mapInt32Int32": {"1": "x"}}', '{"mapUint32Uint32": {"-1": 1}}',
    '{"optionalTimestamp": "2024-13-01T00:00:00Z"}', '{"optionalTimestamp": "10000-01-01T00:00:00Z"}',
    '{"optionalTimestamp": 5}', '{"optionalDuration": "1"}', '{"optionalDuration": "315576000001s"}',
    '{"optionalDuration": 1}', '{"optionalNestedMessage": 1}', '{"optionalNestedMessage": {"a": "x"}}',
    '{"optionalNestedMessage": {"nope": 1}}', '{"optionalAny": {"@type": "type.googleapis.com/nope.Nope"}}',
    '{"optionalAny": {"c": 1}}', '{"optionalFieldMask": 1}', '{"optionalInt32Wrapper": "x"}',
    '{"optionalFloatWrapper": 3.5e38}', '{"optionalStruct": 1}', '{"optionalStruct": [1]}',
    '{"repeatedNestedMessage": [1]}', '{"optionalForeignMessage": {"c": 2147483648}}',
    '[]', '1', '"x"', '{"optionalInt32": 1', '{"optionalBoolWrapper": "x"}', '{"optionalValue": 1e400}',
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--count", type=int, default=int(os.environ.get("PROTOGATE_DIFFERENTIAL_COUNT", "10000")))
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--batch", type=int, default=25)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="protogate-differential-")
    descriptors = compile_protos(work)
    from testdata import differential_pb2 as diff
    from testdata.conformance import test_messages_proto3_pb2 as pb

    echo = Echo()
    server, port = echo.start()
    gateways = []
    procs = []
    for schema in ("compiled", f"descriptors:{descriptors}"):
        proc, gport = start_gateway(args.binary, port, schema)
        procs.append(proc)
        gateways.append(Client(schema.split(":")[0], gport))

    rng = random.Random(args.seed)
    gen = Generator(rng, pb)
    differences = []
    counts = {"messages": 0, "body": 0, "query": 0, "path": 0, "refusals": 0, "refusals_skipped": []}

    def differ(kind, where, detail):
        differences.append({"kind": kind, "where": where, **detail})

    try:
        for start in range(0, args.count, args.batch):
            size = min(args.batch, args.count - start)
            messages = [gen.message(pb.TestAllTypesProto3()) for _ in range(size)]
            counts["messages"] += size
            plains = [diff.Plain.FromString(m.SerializeToString()) for m in messages]
            # Plain lacks some of the fields: the bytes it keeps are unknown fields; drop them.
            for p in plains:
                p.DiscardUnknownFields()
            for variant, batch_type, items, path in (
                ("all", diff.Batch, messages, "/differential/all:batch"),
                ("plain", diff.PlainBatch, plains, "/differential/plain:batch"),
            ):
                batch = batch_type(messages=items)
                body = reference_json(batch)
                want_reply = json.loads(reference_json(batch, minimal=False))
                for gateway in gateways:
                    status, reply = gateway.send("POST", path, body)
                    got = echo.take()
                    where = f"{gateway.name} {variant} body batch from message {start}"
                    if status != 200:
                        differ("refused", where, {"status": status, "reply": reply.decode(errors="replace")[:400]})
                        continue
                    if len(got) != 1:
                        differ("upstream", where, {"calls": len(got)})
                        continue
                    received = batch_type.FromString(got[0])
                    for i, (want, have) in enumerate(zip(items, received.messages)):
                        a, b = canonical(want), canonical(have)
                        if not same_tree(a, b):
                            differ("upstream message", f"{where} #{i}", first_difference(a, b))
                    got_reply = json.loads(reply)
                    for i, (w, h) in enumerate(zip(want_reply.get("messages", []), got_reply.get("messages", []))):
                        if not same_tree(w, h):
                            differ("reply json", f"{where} #{i}", first_difference(w, h))
                    if len(want_reply.get("messages", [])) != len(got_reply.get("messages", [])):
                        differ("reply json", where, {"lengths": "differ"})
                    counts["body"] += len(items)
            # Query strings and paths: every fourth message, through both codecs and both types.
            for n, message in enumerate(messages):
                if (start + n) % 4:
                    continue
                for variant, typ, item in (("all", pb.TestAllTypesProto3, message),
                                           ("plain", diff.Plain, plains[n])):
                    query, kept = query_of(item, typ.DESCRIPTOR.fields)
                    checks = [("query", f"/differential/{variant}?{query}", only(item, kept))]
                    if (start + n) % 8 == 0:
                        segments, path_kept = path_of(item)
                        if segments is not None:
                            checks.append(("path", f"/differential/{variant}/{segments}", only(item, path_kept)))
                    for kind, url, expected in checks:
                        for gateway in gateways:
                            status, reply = gateway.send("GET", url)
                            got = echo.take()
                            where = f"{gateway.name} {variant} {kind} of message {start + n}"
                            if status != 200 or len(got) != 1:
                                differ(kind, where, {"status": status, "url": url[:300],
                                                     "reply": reply.decode(errors="replace")[:300]})
                                continue
                            have = typ.FromString(got[0])
                            a, b = canonical(expected), canonical(have)
                            if not same_tree(a, b):
                                differ(kind, where, {"url": url[:300], **first_difference(a, b)})
                            counts[kind] += 1
            if len(differences) > 50:
                break

        for body in REFUSALS:
            try:
                json_format.Parse(body, pb.TestAllTypesProto3())
                counts["refusals_skipped"].append(body)
                continue
            except (json_format.ParseError, ValueError, TypeError):
                pass
            for gateway in gateways:
                status, reply = gateway.send("POST", "/differential/all", body)
                got = echo.take()
                if status != 400 or got:
                    differ("accepted what the reference refuses", f"{gateway.name} {body}",
                           {"status": status, "reply": reply.decode(errors="replace")[:300]})
                    continue
                message = json.loads(reply).get("message", "")
                if "rust" in message.lower() or "serde" in message.lower():
                    differ("library words", f"{gateway.name} {body}", {"message": message})
            counts["refusals"] += 1
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        server.stop(0)

    for d in differences[:20]:
        print(json.dumps(d, ensure_ascii=False)[:2000], file=sys.stderr)
    summary = {"summary": counts, "differences": len(differences), "deviations": DEVIATIONS, "seed": args.seed}
    print(json.dumps(summary))
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
