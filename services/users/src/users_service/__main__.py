"""``python -m users_service [--host H] [--port N]``: run the gRPC server."""

from __future__ import annotations

import argparse
import logging
import sys

import grpc

from users_service.server import (
    DEFAULT_HOST,
    DEFAULT_MAX_WORKERS,
    DEFAULT_PORT,
    SHUTDOWN_GRACE_S,
    BindError,
    configure_logging,
    serve,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m users_service",
        description="Serve MyService (proto/api.proto) with health checking and reflection. "
        "Set USERS_SERVICE_TEST_HOOKS=1 to honour x-test-* request metadata.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port, 0 = any free (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=DEFAULT_MAX_WORKERS,
        help=f"handler threads (default {DEFAULT_MAX_WORKERS})",
    )
    parser.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        default=None,
        help="reject RPCs beyond this many with RESOURCE_EXHAUSTED (default: unbounded)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=SHUTDOWN_GRACE_S,
        help=f"seconds to drain in-flight RPCs on SIGTERM/SIGINT (default {SHUTDOWN_GRACE_S:g})",
    )
    parser.add_argument(
        "--grpc-option",
        dest="grpc_options",
        action="append",
        type=parse_grpc_option,
        default=[],
        metavar="NAME=VALUE",
        help="a grpc-core channel argument for the server, overriding the service's defaults "
        "(repeatable; integer values are passed as integers), e.g. "
        "grpc.http2.max_ping_strikes=2",
    )
    parser.add_argument(
        "--compression",
        choices=("none", "gzip", "deflate"),
        default="none",
        help="compress every reply, as grpc.server(..., compression=...) does (default none)",
    )
    parser.add_argument(
        "--seed-style",
        action="store_true",
        help="serve MyService only, as the seed's server does: no grpc.health.v1, no reflection",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def parse_grpc_option(text: str) -> tuple[str, int | str]:
    """``NAME=VALUE`` -> ``(NAME, VALUE)``, VALUE as an int when it is one."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    try:
        return name, int(value)
    except ValueError:
        return name, value


COMPRESSIONS = {
    "none": None,
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        return serve(
            args.host,
            args.port,
            max_workers=args.max_workers,
            maximum_concurrent_rpcs=args.max_concurrent_rpcs,
            grace=args.grace,
            options=args.grpc_options,
            compression=COMPRESSIONS[args.compression],
            seed_style=args.seed_style,
        )
    except BindError as exc:
        logging.getLogger("users_service").error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
