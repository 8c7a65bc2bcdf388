"""``python -m users_service.healthcheck HOST:PORT``: a Docker HEALTHCHECK probe.

Calls ``grpc.health.v1.Health/Check`` and exits 0 if the status is SERVING,
1 otherwise (NOT_SERVING, unknown service, connection failure, timeout).
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TIMEOUT_S = 3.0


def check(target: str, service: str = "", timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Return the health status name for ``service`` at ``target``.

    Raises ``grpc.RpcError`` if the call fails.
    """
    # Never route a loopback/container-network probe through an HTTP proxy.
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 when SERVING, else 1."""
    parser = argparse.ArgumentParser(
        prog="python -m users_service.healthcheck", description=__doc__
    )
    parser.add_argument("target", help="HOST:PORT of the gRPC server")
    parser.add_argument(
        "--service", default="", help='service name to check (default "": the server)'
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    try:
        status = check(args.target, args.service, args.timeout)
    except grpc.RpcError as exc:
        detail = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.Call) else str(exc)
        print(f"{args.target}: unhealthy ({detail})")
        return 1
    print(f"{args.target}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
