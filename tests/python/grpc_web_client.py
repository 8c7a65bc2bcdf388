"""A gRPC-Web client someone else wrote (the `connectrpc` package's, with
ProtocolType.GRPC_WEB) against protogate (tests/protocol_grpc_web.rs). Prints one JSON object
with what it saw; the Rust test asserts on it.

  users URL        MyService.User (proto/api.proto) through the gateway in front of the users
                   service with its test hooks: a call with metadata and trailers, an error
                   with details
  routeguide URL   RouteGuide's unary GetFeature and server-streaming ListFeatures

CODEC is proto (application/grpc-web+proto, the default) or json
(application/grpc-web+json: the same calls with proto3 JSON messages in the envelopes).

Usage: grpc_web_client.py SCENARIO URL [CODEC]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connect_client import stubs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def codec_of(name: str):
    from connectrpc.codec import proto_binary_codec, proto_json_codec

    return {"proto": proto_binary_codec, "json": proto_json_codec}[name]()


def users(url: str, codec: str) -> dict:
    pb, connect = stubs()
    from connectrpc.client import ResponseMetadata
    from connectrpc.errors import ConnectError
    from connectrpc.protocol import ProtocolType

    out = {}
    with connect.MyServiceClientSync(url, protocol=ProtocolType.GRPC_WEB, codec=codec_of(codec), send_compression=None) as client:
        with ResponseMetadata() as meta:
            reply = client.user(pb.UserReq(userIDs=[1, 2]), headers={"x-test-echo": "hello"}, timeout_ms=10000)
        out["users"] = [u.name for u in reply.data]
        out["echo"] = meta.headers.get("x-echo")
        out["echo_trailer"] = meta.trailers.get("x-echo-trailer")
        try:
            client.user(pb.UserReq(userIDs=[1]), headers={"x-test-fail-code": "5", "x-test-fail-details": "1"})
            out["failure"] = "no error"
        except ConnectError as err:
            out["failure"] = {
                "code": err.code.name,
                "message": err.message,
                "details": [d.type_name for d in err.details],
            }
    return out


def routeguide(url: str, codec: str) -> dict:
    pb, connect = stubs(os.path.join(HERE, "..", "routeguide"), "route_guide")
    from connectrpc.protocol import ProtocolType

    out = {}
    with connect.RouteGuideClientSync(url, protocol=ProtocolType.GRPC_WEB, codec=codec_of(codec), send_compression=None) as client:
        feature = client.get_feature(pb.Point(latitude=409146138, longitude=-746188906), timeout_ms=10000)
        out["unary"] = feature.name
        rect = pb.Rectangle(lo=pb.Point(latitude=400000000, longitude=-750000000), hi=pb.Point(latitude=420000000, longitude=-730000000))
        out["server_stream"] = [f.name for f in client.list_features(rect, timeout_ms=10000)]
    return out


def main() -> None:
    scenario, url = sys.argv[1], sys.argv[2]
    codec = sys.argv[3] if len(sys.argv) > 3 else "proto"
    print(json.dumps({"users": users, "routeguide": routeguide}[scenario](url, codec)), flush=True)


if __name__ == "__main__":
    main()
