"""The client side of the gapic-showcase compliance suite for tests/showcase.rs: builds
every case's HTTP request from the method's google.api.http rule as GAPIC REST clients do,
and judges the gateway's replies. protobuf's json_format (the reference implementation of
the proto3 JSON mapping) reads the suite and the replies, so no number in the suite goes
through the gateway's own JSON parser on the test's side.

  requests DESCRIPTORS SUITE   one JSON line per (case, rpc, pass) on stdout:
                               {case, rpc, pass, method, target, body, binding}
  check DESCRIPTORS SUITE RESULTS
                               reads result lines {case, rpc, pass, source, status, body}
                               from the file RESULTS, writes one verdict line per result on
                               stdout: {case, rpc, pass, source, ok, why}

How a request is built (google/api/http.proto, and what GAPIC generators do):
- the first binding (the rule, then its additional_bindings) whose path variables all match
  the request's values is used; a case with intended_binding_uri must select that one;
- path variables take the field's value in its JSON form; a variable of one segment
  (`{x}`, `{x=*}`) percent-encodes every byte but [-_.~0-9a-zA-Z], one of several segments
  (`{x=first/*}`, `{x=**}`) keeps '/' too;
- body "*": the request without the path's fields as JSON; body "info": that field; the
  fields left go to the query as dotted names (`info.fString=...`).

Passes: "camel" (JSON names, enums by name, query encoded as Python requests does, space as
'+'), "snake" (proto field names in query and body, space as %20), "gapic" (as generated
GAPIC clients send it: JSON names, enums as numbers, and `$alt=json;enum-encoding=int`).
"""
import base64
import decimal
import json
import math
import re
import struct
import sys
import urllib.parse

from google.protobuf import descriptor as d
from google.protobuf import json_format
from google.protobuf.internal import type_checkers

import descriptor_set
from compliance_server import PACKAGE, differences

PASSES = ("camel", "snake", "gapic")
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def load(argv):
    pool, _ = descriptor_set.load(argv[0])
    service = pool.FindServiceByName(f"{PACKAGE}.Compliance")
    suite_class = descriptor_set.message_class(pool, f"{PACKAGE}.ComplianceSuite")
    with open(argv[1], encoding="utf-8") as f:
        suite = json_format.Parse(f.read(), suite_class(), descriptor_pool=pool)
    return pool, service, suite


def bindings(pool, method):
    """(http method, template, body) of the rule and its additional bindings, in order."""
    rule = descriptor_set.http_rules(pool, method)
    out = []
    for r in [rule] + list(rule.additional_bindings):
        kind = r.WhichOneof("pattern")
        if kind == "custom":
            out.append((r.custom.kind, r.custom.path, r.body))
        else:
            out.append((kind.upper(), getattr(r, kind), r.body))
    return out


def field_of(message, path):
    """The descriptor and value of dotted proto field `path` in `message` (defaults too)."""
    *parents, last = path.split(".")
    for name in parents:
        message = getattr(message, name)
    return message.DESCRIPTOR.fields_by_name[last], getattr(message, last)


def scalar_text(field, value, ints_for_enums):
    """A singular field's value as the proto3 JSON mapping writes it, unquoted."""
    if field.type == d.FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return str(value) if ints_for_enums or known is None else known.name
    if field.type == d.FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if field.type in (d.FieldDescriptor.TYPE_FLOAT, d.FieldDescriptor.TYPE_DOUBLE):
        if field.type == d.FieldDescriptor.TYPE_FLOAT:
            value = type_checkers.ToShortestFloat(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if field.type == d.FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return str(value)


def pattern_regex(pattern):
    parts = []
    for segment in pattern.split("/"):
        parts.append({"*": "[^/]+", "**": ".+"}.get(segment, re.escape(segment)))
    return re.compile("/".join(parts))


def percent_encode(text, keep_slash):
    out = []
    for byte in text.encode("utf-8"):
        if byte in UNRESERVED or (keep_slash and byte == ord("/")):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def expand(template, request, ints_for_enums):
    """The path of `template` for `request` and the fields it binds, or None when a value
    does not match its variable's pattern."""
    bound = []
    failed = False

    def replace(match):
        nonlocal failed
        path, pattern = match.group(1), match.group(2) or "*"
        field, value = field_of(request, path)
        multi = "/" in pattern or "**" in pattern
        encoded = percent_encode(scalar_text(field, value, ints_for_enums), keep_slash=multi)
        # The server matches the path as sent: the encoded value must fit the pattern.
        if not pattern_regex(pattern).fullmatch(encoded):
            failed = True
            return ""
        bound.append(path)
        return encoded

    path = VARIABLE.sub(replace, template)
    return None if failed else (path, bound)


def without(request, paths):
    """A copy of `request` with the fields at `paths` cleared."""
    copy = type(request)()
    copy.CopyFrom(request)
    for path in paths:
        *parents, last = path.split(".")
        message = copy
        for name in parents:
            message = getattr(message, name)
        message.ClearField(last)
    return copy


def flatten(value, key, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{key}.{k}" if key else k, out)
    elif isinstance(value, list):
        for v in value:
            flatten(v, key, out)
    elif isinstance(value, bool):
        out.append((key, "true" if value else "false"))
    elif isinstance(value, float):
        out.append((key, json.dumps(value)))
    else:
        out.append((key, str(value)))


def build(pool, method, request, mode):
    ints = mode == "gapic"
    proto_names = mode == "snake"
    for http_method, template, body in bindings(pool, method):
        expanded = expand(template, request, ints)
        if expanded is None:
            continue
        path, bound = expanded
        rest = without(request, bound)
        body_json = None
        if body == "*":
            body_message, rest = rest, None
        elif body:
            body_message = getattr(rest, body)
            rest = without(rest, [body])
        else:
            body_message = None
        if body_message is not None:
            body_json = json_format.MessageToJson(
                body_message, preserving_proto_field_name=proto_names, use_integers_for_enums=ints
            )
        pairs = []
        if rest is not None:
            as_dict = json_format.MessageToDict(
                rest, preserving_proto_field_name=proto_names, use_integers_for_enums=ints
            )
            flatten(as_dict, "", pairs)
        if ints:
            pairs.append(("$alt", "json;enum-encoding=int"))
        quote = urllib.parse.quote_plus if mode == "camel" else urllib.parse.quote
        query = urllib.parse.urlencode(pairs, quote_via=quote)
        target = path + ("?" + query if query else "")
        return {"method": http_method, "target": target, "body": body_json, "binding": template}
    return None


def requests(argv):
    pool, service, suite = load(argv)
    for group in suite.group:
        for rpc in group.rpcs:
            method = service.methods_by_name[rpc.split(".")[-1]]
            for request in group.requests:
                for mode in PASSES:
                    built = build(pool, method, request, mode)
                    line = {"case": request.name, "rpc": method.name, "pass": mode}
                    if built is None:
                        line["error"] = "no binding of the rule matches the request's values"
                    elif request.HasField("intended_binding_uri") and request.intended_binding_uri != built["binding"]:
                        line["error"] = f"the binding chosen, {built['binding']}, is not the intended {request.intended_binding_uri}"
                    else:
                        line.update(built)
                    print(json.dumps(line, ensure_ascii=False))


def field_by_json_key(descriptor, key):
    for field in descriptor.fields:
        if key in (field.json_name, field.name):
            return field
    return None


def printing_faults(descriptor, obj, prefix, mode):
    """What in a reply's JSON object (numbers as Decimal, as printed) the proto3 JSON mapping
    would print otherwise: a float not in float32's shortest form, an enum not in the form
    asked for."""
    faults = []
    for key, value in obj.items():
        field = field_by_json_key(descriptor, key)
        if field is None or value is None:
            continue
        name = prefix + key
        if field.type == d.FieldDescriptor.TYPE_MESSAGE and isinstance(value, dict):
            faults.extend(printing_faults(field.message_type, value, name + ".", mode))
        elif field.type == d.FieldDescriptor.TYPE_FLOAT and isinstance(value, decimal.Decimal):
            shortest = type_checkers.ToShortestFloat(as_float32(value) or float(value))
            if float(value) != shortest:
                faults.append(f"{name} printed as {value}, not float32's shortest form {shortest!r}")
        elif field.type == d.FieldDescriptor.TYPE_ENUM:
            known = isinstance(value, int) and value in field.enum_type.values_by_number
            if mode == "gapic" and not isinstance(value, int):
                faults.append(f"{name} printed as {value!r}, not a number (enum-encoding=int)")
            elif mode != "gapic" and known:
                faults.append(f"{name} printed as {value}, not its name")
    return faults


def as_float32(number):
    """`number` (a JSON number's Decimal) rounded to the nearest float32, as Go's protojson
    and C++ read a float field before their range check; None when it is out of range."""
    try:
        return struct.unpack("<f", struct.pack("<f", float(number)))[0]
    except OverflowError:
        return None


def readable(descriptor, obj):
    """`obj` (numbers as Decimal) with float fields rounded to float32 and other numbers
    as floats. Python's json_format refuses its own shortest float32 output for the largest
    float (it compares `3.4028235e+38` as a double with FLT_MAX); rounding first reads it
    as the other reference implementations do."""
    out = {}
    for key, value in obj.items():
        field = field_by_json_key(descriptor, key)
        if isinstance(value, dict) and field is not None and field.type == d.FieldDescriptor.TYPE_MESSAGE:
            value = readable(field.message_type, value)
        elif isinstance(value, decimal.Decimal):
            rounded = as_float32(value) if field is not None and field.type == d.FieldDescriptor.TYPE_FLOAT else None
            value = rounded if rounded is not None else float(value)
        out[key] = value
    return out


def check(argv):
    pool, _, suite = load(argv)
    expected = {r.name: r for g in suite.group for r in g.requests}
    response_class = descriptor_set.message_class(pool, f"{PACKAGE}.RepeatResponse")
    with open(argv[2], encoding="utf-8") as f:
        results = [json.loads(line) for line in f if line.strip()]
    for result in results:
        verdict = {k: result[k] for k in ("case", "rpc", "pass", "source")}
        verdict["ok"], verdict["why"] = judge(pool, response_class, expected[result["case"]], result)
        print(json.dumps(verdict, ensure_ascii=False), flush=True)


def judge(pool, response_class, expected, result):
    body = result["body"]
    if result["status"] != 200:
        return False, f"HTTP {result['status']}: {body[:300]}"
    try:
        raw = json.loads(body, parse_float=decimal.Decimal)
        reply = json_format.ParseDict(readable(response_class.DESCRIPTOR, raw), response_class(), descriptor_pool=pool)
    except (ValueError, json_format.ParseError) as err:
        return False, f"the reply does not parse as RepeatResponse: {err}"
    diff = differences(reply.request, expected)
    if diff:
        return False, "the echo differs (echoed against sent): " + "; ".join(diff)
    faults = printing_faults(response_class.DESCRIPTOR, raw, "", result["pass"])
    if faults:
        return False, "printed: " + "; ".join(faults)
    return True, ""


if __name__ == "__main__":
    {"requests": requests, "check": check}[sys.argv[1]](sys.argv[2:])
