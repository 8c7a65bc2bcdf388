"""A grpcio client that calls through protogate's gRPC pass-through (tests/protocol_grpc.rs).

It runs one scenario against ADDR (the gateway's port) and prints one JSON object with what
it saw; the Rust test asserts on it. Nothing here decides pass or fail.

  routeguide ADDR   the four method shapes of grpc's RouteGuide (tests/routeguide), the
                    bidirectional one interleaved: each note is sent only after the answer to
                    the one before arrived, which only a relay that streams can serve
  users ADDR        MyService (proto/api.proto) with the users service's test hooks: a call,
                    metadata and trailers, an error with details, deadlines, an unknown method
                    and an oversized request message

Stubs are generated at start with grpc_tools.protoc into a temporary directory.

Usage: grpc_passthrough_client.py SCENARIO ADDR
"""
import json
import os
import queue
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def stubs(proto_dir: str, name: str):
    out = tempfile.mkdtemp(prefix="passthrough-stubs-")
    status = protoc.main(["grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}", name])
    if status != 0:
        sys.exit(f"grpc_passthrough_client: protoc failed ({status})")
    sys.path.insert(0, out)


def error_of(err: grpc.RpcError) -> dict:
    return {
        "code": err.code().name,
        "details": err.details(),
        "trailing": {k: (v if isinstance(v, str) else v.hex()) for k, v in (err.trailing_metadata() or ())},
    }


def routeguide(addr: str) -> dict:
    stubs(os.path.join(ROOT, "tests", "routeguide"), "route_guide.proto")
    import route_guide_pb2 as pb
    import route_guide_pb2_grpc as pb_grpc

    out = {}
    with grpc.insecure_channel(addr) as channel:
        stub = pb_grpc.RouteGuideStub(channel)
        feature = stub.GetFeature(pb.Point(latitude=409146138, longitude=-746188906), timeout=10)
        out["unary"] = feature.name
        rect = pb.Rectangle(lo=pb.Point(latitude=400000000, longitude=-750000000), hi=pb.Point(latitude=420000000, longitude=-730000000))
        out["server_stream"] = [f.name for f in stub.ListFeatures(rect, timeout=10)]
        points = [pb.Point(latitude=409146138, longitude=-746188906), pb.Point(latitude=3, longitude=2), pb.Point(latitude=407838351, longitude=-746143763)]
        summary = stub.RecordRoute(iter(points), timeout=10)
        out["client_stream"] = {"points": summary.point_count, "features": summary.feature_count, "distance": summary.distance}

        # Bidirectional, interleaved: the next note goes only once the answers to the one
        # before have come back (the server answers a note with the earlier notes at its
        # location).
        outgoing: "queue.Queue" = queue.Queue()

        def requests():
            while True:
                note = outgoing.get()
                if note is None:
                    return
                yield note

        here = pb.Point(latitude=1, longitude=1)
        replies = stub.RouteChat(requests(), timeout=10)
        got = []
        outgoing.put(pb.RouteNote(location=here, message="first"))
        outgoing.put(pb.RouteNote(location=here, message="second"))
        got.append(next(replies).message)  # "first", answering "second"
        outgoing.put(pb.RouteNote(location=here, message="third"))
        got.append(next(replies).message)  # "first", answering "third"
        got.append(next(replies).message)  # "second", answering "third"
        outgoing.put(None)
        got.extend(r.message for r in replies)
        out["bidi"] = got
    return out


def users(addr: str) -> dict:
    sys.path.insert(0, os.path.join(ROOT, "services", "users", "src"))
    import api_pb2 as pb
    import api_pb2_grpc as pb_grpc
    from google.rpc import error_details_pb2, status_pb2

    out = {}
    with grpc.insecure_channel(addr) as channel:
        stub = pb_grpc.MyServiceStub(channel)
        reply, call = stub.User.with_call(
            pb.UserReq(userIDs=[1, 2]), timeout=10, metadata=[("x-test-echo", "hello"), ("x-not-allowed", "secret")]
        )
        out["users"] = [u.name for u in reply.data]
        out["initial"] = dict(call.initial_metadata())
        out["trailing"] = dict(call.trailing_metadata())

        try:
            stub.User(pb.UserReq(userIDs=[1]), timeout=10, metadata=[("x-test-fail-code", "5"), ("x-test-fail-details", "1")])
            out["failure"] = "no error"
        except grpc.RpcError as err:
            failure = error_of(err)
            details = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
            if details:
                status = status_pb2.Status.FromString(details)
                info = error_details_pb2.ErrorInfo()
                status.details[0].Unpack(info)
                failure["detail_reason"] = info.reason
            out["failure"] = failure

        for name, timeout in (("client_deadline", 0.3), ("capped_deadline", 30)):
            started = time.monotonic()
            try:
                stub.User(pb.UserReq(userIDs=[1]), timeout=timeout, metadata=[("x-test-delay-ms", "3000")])
                out[name] = {"code": "OK"}
            except grpc.RpcError as err:
                out[name] = error_of(err)
            out[name]["seconds"] = time.monotonic() - started

        unknown = channel.unary_unary("/MyService/Nope", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            unknown(b"", timeout=10)
            out["unknown_method"] = {"code": "OK"}
        except grpc.RpcError as err:
            out["unknown_method"] = error_of(err)

        try:
            stub.User(pb.UserReq(userIDs=list(range(100000, 102000))), timeout=10)
            out["too_large"] = {"code": "OK"}
        except grpc.RpcError as err:
            out["too_large"] = error_of(err)

        # The channel still works after all of that.
        out["after"] = [u.name for u in stub.User(pb.UserReq(userIDs=[3]), timeout=10).data]
    return out


def main() -> None:
    scenario, addr = sys.argv[1], sys.argv[2]
    result = {"routeguide": routeguide, "users": users}[scenario](addr)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
