"""grpc.health.v1 statuses and server reflection."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from helpers import RPC_TIMEOUT, RunningServer, open_channel
from users_service.server import BindError, build_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_status(channel: grpc.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT).status


@pytest.mark.parametrize("service", ["", "MyService"])
def test_health_serving(channel: grpc.Channel, service: str) -> None:
    assert health_status(channel, service) == SERVING


def test_health_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as err:
        health_status(channel, "NoSuchService")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_not_serving_after_graceful_shutdown_begins(
    start_server: Callable[..., RunningServer],
) -> None:
    running = start_server(test_hooks=False)
    with open_channel(running.target) as ch:
        assert health_status(ch, "") == SERVING
        running.health.enter_graceful_shutdown()
        assert health_status(ch, "") == NOT_SERVING
        assert health_status(ch, "MyService") == NOT_SERVING


def test_reflection_lists_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="MyService"),
    ]
    listing, by_symbol = list(stub.ServerReflectionInfo(iter(requests), timeout=RPC_TIMEOUT))
    services = {s.name for s in listing.list_services_response.service}
    assert services == {
        "MyService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert by_symbol.file_descriptor_response.file_descriptor_proto  # api.proto is resolvable


def test_build_server_reports_bound_port_and_rejects_busy_port(
    plain_server: RunningServer,
) -> None:
    assert plain_server.port > 0
    # so_reuseport=0 makes a second bind on the same port fail loudly.
    with pytest.raises(BindError):
        build_server(plain_server.target, test_hooks=False)
