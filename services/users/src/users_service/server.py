"""Server assembly, startup and graceful shutdown.

:func:`build_server` wires ``MyService``, ``grpc.health.v1.Health`` and server
reflection into an (unstarted) ``grpc.Server``; :func:`serve` runs it until
SIGTERM/SIGINT and then drains it.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
from collections.abc import Iterable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from users_service.hooks import ENV_VAR as HOOKS_ENV_VAR
from users_service.hooks import TestHooksInterceptor, hooks_enabled_from_env
from users_service.service import SERVICE_NAME, MyService
from users_service.stubs import api_pb2_grpc

log = logging.getLogger(__name__)

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 50051
DEFAULT_MAX_WORKERS = 10
#: Seconds in-flight RPCs get to finish after SIGTERM/SIGINT.
SHUTDOWN_GRACE_S = 10.0

#: Always applied; ``build_server(options=...)`` entries override by key.
DEFAULT_SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    # grpc-core sets SO_REUSEPORT by default, letting two servers silently
    # share a port (grpc/grpc#10755). Fail loudly instead.
    ("grpc.so_reuseport", 0),
    # Accept the gateway's keepalive pings (tonic http2_keep_alive_interval),
    # also on idle connections, without GOAWAY "too_many_pings".
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
)

#: Health statuses set to SERVING at start ("" is the whole server).
HEALTH_SERVICES: tuple[str, ...] = ("", SERVICE_NAME)

READY_LINE = "users_service listening on {address}"


class BindError(RuntimeError):
    """The server could not bind its address (e.g. the port is in use)."""


def format_address(host: str, port: int) -> str:
    """``host:port``, bracketing a bare IPv6 host (``::`` -> ``[::]:port``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def merge_options(options: Iterable[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    """:data:`DEFAULT_SERVER_OPTIONS` overridden (by key) by ``options``."""
    merged = dict(DEFAULT_SERVER_OPTIONS)
    merged.update(options or ())
    return list(merged.items())


def build_server(
    addr: str,
    options: Iterable[tuple[str, Any]] | None = None,
    *,
    health_servicer: health.HealthServicer | None = None,
    test_hooks: bool | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    maximum_concurrent_rpcs: int | None = None,
    compression: grpc.Compression | None = None,
    seed_style: bool = False,
) -> tuple[grpc.Server, int]:
    """Build an unstarted server bound (insecurely) to ``addr``.

    Args:
        addr: ``host:port``; port 0 picks a free port.
        options: extra channel args, merged over :data:`DEFAULT_SERVER_OPTIONS`.
        health_servicer: the ``grpc.health.v1`` servicer to register; pass your
            own to control it later (e.g. ``enter_graceful_shutdown()``).
            Its "" and ``MyService`` statuses are set to SERVING.
        test_hooks: install :class:`~users_service.hooks.TestHooksInterceptor`;
            ``None`` means "if ``USERS_SERVICE_TEST_HOOKS=1``".
        max_workers: handler thread-pool size.
        maximum_concurrent_rpcs: above this, new RPCs get RESOURCE_EXHAUSTED
            (``None``: unbounded queueing).
        compression: compress every reply with this algorithm
            (``grpc.server(..., compression=...)``), whatever the client offered.
        seed_style: serve ``MyService`` only, as the seed's server does: no
            ``grpc.health.v1`` and no reflection (``health_servicer`` is unused).

    Returns:
        ``(server, port)`` with the actually bound port.

    Raises:
        BindError: the address could not be bound.
    """
    if test_hooks is None:
        test_hooks = hooks_enabled_from_env()
    interceptors = [TestHooksInterceptor()] if test_hooks else []
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-handler"),
        interceptors=interceptors,
        options=merge_options(options),
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        compression=compression,
    )
    api_pb2_grpc.add_MyServiceServicer_to_server(MyService(), server)

    if seed_style:
        return _bind(server, addr, test_hooks)
    if health_servicer is None:
        health_servicer = health.HealthServicer()
    for name in HEALTH_SERVICES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return _bind(server, addr, test_hooks)


def _bind(server: grpc.Server, addr: str, test_hooks: bool) -> tuple[grpc.Server, int]:
    """Binds ``addr`` insecurely; returns the server and the bound port."""
    try:
        port = server.add_insecure_port(addr)
    except RuntimeError as exc:
        raise BindError(f"cannot bind {addr}: {exc}") from exc
    if port == 0:  # older grpcio reported bind failure this way
        raise BindError(f"cannot bind {addr}")
    if test_hooks:
        log.warning("test hooks ENABLED (%s=1): x-test-* metadata is honoured", HOOKS_ENV_VAR)
    return server, port


def graceful_stop(
    server: grpc.Server, health_servicer: health.HealthServicer, grace: float = SHUTDOWN_GRACE_S
) -> None:
    """Report NOT_SERVING for every service, then stop, letting in-flight
    RPCs finish for up to ``grace`` seconds. Blocks until stopped."""
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=grace).wait()


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    maximum_concurrent_rpcs: int | None = None,
    grace: float = SHUTDOWN_GRACE_S,
    options: Iterable[tuple[str, Any]] | None = None,
    compression: grpc.Compression | None = None,
    seed_style: bool = False,
) -> int:
    """Run the server until SIGTERM or SIGINT, then drain it; returns exit code 0.

    Once the port is bound and the server started, prints exactly one line to
    stdout, ``users_service listening on HOST:PORT`` (the real port, so port 0
    works), and flushes it. Everything else goes to ``logging`` (stderr).
    Must be called from the main thread (it installs signal handlers).
    """
    # SimpleQueue.put is documented as safe to call from a signal handler,
    # unlike Event.set (which can deadlock if the signal lands while the
    # main thread holds the Event's lock).
    stop_requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def on_signal(signum: int, _frame: object) -> None:
        stop_requests.put(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        health_servicer = health.HealthServicer()
        server, bound_port = build_server(
            format_address(host, port),
            options,
            health_servicer=health_servicer,
            max_workers=max_workers,
            maximum_concurrent_rpcs=maximum_concurrent_rpcs,
            compression=compression,
            seed_style=seed_style,
        )
        server.start()
        address = format_address(host, bound_port)
        print(READY_LINE.format(address=address), flush=True)
        served = "MyService only (seed style)" if seed_style else "MyService, health and reflection"
        log.info("serving %s on %s", served, address)

        signum = stop_requests.get()
        log.info(
            "received %s: health -> NOT_SERVING, draining for up to %.0fs",
            signal.Signals(signum).name,
            grace,
        )
        graceful_stop(server, health_servicer, grace)
        log.info("stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr (stdout carries only the readiness line)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
