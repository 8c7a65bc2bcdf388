"""The `connectrpc` package's Python client against protogate's Connect front-end
(tests/protocol_connect.rs): MyService (proto/api.proto) through the gateway, in front of the
users service with its test hooks. Prints one JSON object with what it saw; the Rust test
asserts on it.

Stubs come from protoc-gen-py and protoc-gen-connectrpc (both from PyPI, in the venv), run by
grpc_tools.protoc into a temporary package at start.

Usage: connect_client.py URL              (http://127.0.0.1:PORT): MyService
       connect_client.py stream URL [json]  RouteGuide.ListFeatures, a Connect server stream
                                            (application/connect+proto, or with json
                                            application/connect+json)
       connect_client.py get URL PROTO_DIR  lookup.proto's Lookup.Get (NO_SIDE_EFFECTS) with
                                            GET, in JSON and proto
       connect_client.py reads URL PROTO_DIR METHOD...
                                            reads.proto's Reads.METHOD with the client's own
                                            GET (use_get), whatever the method's idempotency:
                                            the gateway decides (tests/protocol_connect_get.rs)
"""
import importlib
import importlib.resources
import json
import os
import sys
import tempfile
import time

from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")
BIN = os.path.dirname(sys.executable)


def stubs(proto_dir=PROTO, name="api", imports=()):
    out = tempfile.mkdtemp(prefix="connect-stubs-")
    package = os.path.join(out, "gen")
    os.mkdir(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            # google/api/annotations.proto, vendored beside the seed's proto.
            *([f"-I{PROTO}"] if os.path.abspath(proto_dir) != os.path.abspath(PROTO) else []),
            # The well-known types (google/protobuf/empty.proto) that grpc_tools ships.
            f"-I{importlib.resources.files('grpc_tools') / '_proto'}",
            f"--plugin=protoc-gen-py={os.path.join(BIN, 'protoc-gen-py')}",
            f"--py_out={package}",
            f"--plugin=protoc-gen-connectrpc={os.path.join(BIN, 'protoc-gen-connectrpc')}",
            f"--connectrpc_out={package}",
            f"{name}.proto",
            # Imports beside the well-known types get their own modules in the package.
            *imports,
        ]
    )
    if status != 0:
        sys.exit(f"connect_client: protoc failed ({status})")
    sys.path.insert(0, out)
    return importlib.import_module(f"gen.{name}_pb"), importlib.import_module(f"gen.{name}_connect")


def get(url: str, proto_dir: str) -> dict:
    pb, connect = stubs(proto_dir, "lookup")
    from connectrpc.codec import proto_binary_codec, proto_json_codec

    out = {}
    for name, codec in (("json", proto_json_codec()), ("proto", proto_binary_codec())):
        with connect.LookupClientSync(url, codec=codec, send_compression=None) as client:
            out[name] = client.get(pb.GetRequest(key=f"key-{name}"), use_get=True, timeout_ms=10000).value
    return out


def reads(url: str, proto_dir: str, names: list[str]) -> dict:
    pb, _connect = stubs(proto_dir, "reads", ("google/api/annotations.proto", "google/api/http.proto"))
    from connectrpc.client import ConnectClientSync, ResponseMetadata
    from connectrpc.errors import ConnectError
    from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

    out = {}
    with ConnectClientSync(url, send_compression=None) as client:
        for name in names:
            # The stubs give use_get only to NO_SIDE_EFFECTS methods; the client's
            # execute_unary sends Connect's GET for any method it is asked to.
            method = MethodInfo(
                name=name,
                service_name="reads.v1.Reads",
                input=pb.ReadRequest,
                output=pb.ReadReply,
                idempotency_level=IdempotencyLevel.UNKNOWN,
                stream_type=StreamType.UNARY,
            )
            try:
                with ResponseMetadata() as meta:
                    reply = client.execute_unary(
                        request=pb.ReadRequest(key=f"key-{name}"), method=method, use_get=True, timeout_ms=10000
                    )
                out[name] = {"value": reply.value, "x-from": meta.headers.get("x-from")}
            except ConnectError as err:
                out[name] = {"code": err.code.name, "message": err.message}
    return out


def stream(url: str, codec_name: str) -> dict:
    pb, connect = stubs(os.path.join(HERE, "..", "routeguide"), "route_guide")
    from connectrpc.codec import proto_binary_codec, proto_json_codec

    codec = proto_json_codec() if codec_name == "json" else proto_binary_codec()
    with connect.RouteGuideClientSync(url, codec=codec, send_compression=None) as client:
        rect = pb.Rectangle(lo=pb.Point(latitude=400000000, longitude=-750000000), hi=pb.Point(latitude=420000000, longitude=-730000000))
        return {"server_stream": [f.name for f in client.list_features(rect, timeout_ms=10000)]}


def main() -> None:
    if sys.argv[1] == "stream":
        print(json.dumps(stream(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "proto")), flush=True)
        return
    if sys.argv[1] == "get":
        print(json.dumps(get(sys.argv[2], sys.argv[3])), flush=True)
        return
    if sys.argv[1] == "reads":
        print(json.dumps(reads(sys.argv[2], sys.argv[3], sys.argv[4:])), flush=True)
        return
    url = sys.argv[1]
    pb, connect = stubs()
    from connectrpc.client import ResponseMetadata
    from connectrpc.codec import proto_binary_codec, proto_json_codec
    from connectrpc.errors import ConnectError
    from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

    def error_of(err: ConnectError) -> dict:
        return {
            "code": err.code.name,
            "message": err.message,
            "details": [{"type": d.type_name, "value": d.message_bytes.hex()} for d in err.details],
        }

    out = {}
    for name, codec in (("json", proto_json_codec()), ("proto", proto_binary_codec())):
        with connect.MyServiceClientSync(url, codec=codec, send_compression=None) as client:
            with ResponseMetadata() as meta:
                reply = client.user(pb.UserReq(userIDs=[1, 2]), headers={"x-test-echo": "hello"}, timeout_ms=10000)
            out[name] = {
                "users": [u.name for u in reply.data],
                "message": reply.message,
                "echo": meta.headers.get("x-echo"),
                "echo_trailer": meta.trailers.get("x-echo-trailer"),
            }
            try:
                client.user(pb.UserReq(userIDs=[1]), headers={"x-test-fail-code": "5", "x-test-fail-details": "1"})
                out[name]["failure"] = "no error"
            except ConnectError as err:
                out[name]["failure"] = error_of(err)

    with connect.MyServiceClientSync(url) as client:  # gzip requests, the client's default
        reply = client.user(pb.UserReq(userIDs=[1, 2, 3] * 200), timeout_ms=10000)
        out["gzip"] = {"users": len(reply.data), "first": reply.data[0].name}
        for name, timeout in (("client_deadline", 300), ("capped_deadline", 30000)):
            started = time.monotonic()
            try:
                client.user(pb.UserReq(userIDs=[1]), headers={"x-test-delay-ms": "3000"}, timeout_ms=timeout)
                out[name] = {"code": "OK"}
            except ConnectError as err:
                out[name] = error_of(err)
            out[name]["seconds"] = time.monotonic() - started
        nope = MethodInfo(
            name="Nope",
            service_name="MyService",
            input=pb.UserReq,
            output=pb.UserReply,
            idempotency_level=IdempotencyLevel.UNKNOWN,
            stream_type=StreamType.UNARY,
        )
        try:
            client.execute_unary(request=pb.UserReq(), method=nope)
            out["unknown_method"] = {"code": "OK"}
        except ConnectError as err:
            out["unknown_method"] = error_of(err)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
