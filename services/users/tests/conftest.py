"""Shared fixtures: in-process servers on 127.0.0.1:0 and client channels."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health

from helpers import RunningServer, open_channel
from users_service.server import build_server


@pytest.fixture
def start_server() -> Iterator[Callable[..., RunningServer]]:
    """Factory: ``start_server(test_hooks=...)`` starts a fresh server on
    127.0.0.1:0; all are stopped at teardown."""
    started: list[RunningServer] = []

    def start(**kwargs: object) -> RunningServer:
        servicer = health.HealthServicer()
        server, port = build_server("127.0.0.1:0", health_servicer=servicer, **kwargs)
        server.start()
        running = RunningServer(server, port, servicer)
        started.append(running)
        return running

    yield start
    for running in started:
        running.server.stop(grace=None).wait()


@pytest.fixture(scope="session")
def plain_server() -> Iterator[RunningServer]:
    """One server without test hooks, shared by the read-only tests."""
    servicer = health.HealthServicer()
    server, port = build_server("127.0.0.1:0", health_servicer=servicer, test_hooks=False)
    server.start()
    yield RunningServer(server, port, servicer)
    server.stop(grace=None).wait()


@pytest.fixture
def channel(plain_server: RunningServer) -> Iterator[grpc.Channel]:
    """A ready channel to :func:`plain_server`."""
    with open_channel(plain_server.target) as ch:
        yield ch
