"""USERS_SERVICE_TEST_HOOKS: x-test-delay-ms, x-test-fail-code, x-served-by."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import api_pb2
import api_pb2_grpc
from helpers import RPC_TIMEOUT, RunningServer, open_channel
from users_service import hooks

REQ = api_pb2.UserReq(userIDs=[1])


@pytest.fixture
def hooked_stub(
    start_server: Callable[..., RunningServer],
) -> Iterator[api_pb2_grpc.MyServiceStub]:
    with open_channel(start_server(test_hooks=True).target) as ch:
        yield api_pb2_grpc.MyServiceStub(ch)


@pytest.fixture
def plain_stub(channel: grpc.Channel) -> api_pb2_grpc.MyServiceStub:
    return api_pb2_grpc.MyServiceStub(channel)


def test_served_by_on_every_response(hooked_stub: api_pb2_grpc.MyServiceStub) -> None:
    reply, call = hooked_stub.User.with_call(REQ, timeout=RPC_TIMEOUT)
    assert [u.name for u in reply.data] == ["Alice"]
    assert dict(call.initial_metadata())["x-served-by"] == socket.gethostname()


def test_served_by_on_health_check_too(start_server: Callable[..., RunningServer]) -> None:
    with open_channel(start_server(test_hooks=True).target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        _, call = stub.Check.with_call(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
    assert dict(call.initial_metadata())["x-served-by"] == socket.gethostname()


def test_delay_causes_deadline_exceeded(hooked_stub: api_pb2_grpc.MyServiceStub) -> None:
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        hooked_stub.User(REQ, timeout=0.2, metadata=[("x-test-delay-ms", "3000")])
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 2.5


def test_delay_frees_the_worker_at_the_deadline(
    start_server: Callable[..., RunningServer],
) -> None:
    # One handler thread: the second call can only be served once the
    # delayed handler noticed the deadline and gave its thread back.
    with open_channel(start_server(test_hooks=True, max_workers=1).target) as ch:
        stub = api_pb2_grpc.MyServiceStub(ch)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            stub.User(REQ, timeout=0.3, metadata=[("x-test-delay-ms", "60000")])
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert stub.User(REQ, timeout=RPC_TIMEOUT).message == "success"
        assert time.monotonic() - start < 5.0


def test_short_delay_still_answers(hooked_stub: api_pb2_grpc.MyServiceStub) -> None:
    start = time.monotonic()
    reply = hooked_stub.User(REQ, timeout=RPC_TIMEOUT, metadata=[("x-test-delay-ms", "150")])
    assert time.monotonic() - start >= 0.15
    assert reply.message == "success"


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL]
)
def test_fail_code(hooked_stub: api_pb2_grpc.MyServiceStub, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as err:
        hooked_stub.User(
            REQ, timeout=RPC_TIMEOUT, metadata=[("x-test-fail-code", str(code.value[0]))]
        )
    assert err.value.code() == code
    assert err.value.details() == "injected failure"
    assert dict(err.value.initial_metadata())["x-served-by"] == socket.gethostname()


@pytest.mark.parametrize(
    ("key", "value"),
    [("x-test-fail-code", "0"), ("x-test-fail-code", "17"), ("x-test-delay-ms", "soon")],
)
def test_bad_hook_value_is_invalid_argument(
    hooked_stub: api_pb2_grpc.MyServiceStub, key: str, value: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        hooked_stub.User(REQ, timeout=RPC_TIMEOUT, metadata=[(key, value)])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_hooks_off_ignore_metadata(plain_stub: api_pb2_grpc.MyServiceStub) -> None:
    start = time.monotonic()
    reply, call = plain_stub.User.with_call(
        REQ,
        timeout=RPC_TIMEOUT,
        metadata=[("x-test-delay-ms", "3000"), ("x-test-fail-code", "14")],
    )
    assert time.monotonic() - start < 2.0
    assert reply.message == "success"
    assert "x-served-by" not in dict(call.initial_metadata())


@pytest.mark.parametrize(
    ("value", "enabled"), [("1", True), ("0", False), ("", False), (None, False)]
)
def test_env_var_controls_hooks(
    monkeypatch: pytest.MonkeyPatch,
    start_server: Callable[..., RunningServer],
    value: str | None,
    enabled: bool,
) -> None:
    if value is None:
        monkeypatch.delenv(hooks.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(hooks.ENV_VAR, value)
    assert hooks.hooks_enabled_from_env() is enabled
    with open_channel(start_server().target) as ch:  # test_hooks=None: read the env
        _, call = api_pb2_grpc.MyServiceStub(ch).User.with_call(REQ, timeout=RPC_TIMEOUT)
    assert ("x-served-by" in dict(call.initial_metadata())) is enabled


def test_echo_comes_back_in_head_and_trailers(hooked_stub: api_pb2_grpc.MyServiceStub) -> None:
    _, call = hooked_stub.User.with_call(REQ, timeout=RPC_TIMEOUT, metadata=[("x-test-echo", "hi")])
    assert dict(call.initial_metadata())["x-echo"] == "hi"
    assert dict(call.trailing_metadata())["x-echo-trailer"] == "hi"


def test_fail_details_carry_an_error_info(hooked_stub: api_pb2_grpc.MyServiceStub) -> None:
    from google.rpc import error_details_pb2, status_pb2

    with pytest.raises(grpc.RpcError) as err:
        hooked_stub.User(
            REQ,
            timeout=RPC_TIMEOUT,
            metadata=[("x-test-fail-code", "5"), ("x-test-fail-details", "1"), ("x-test-echo", "e")],
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    trailers = dict(err.value.trailing_metadata())
    assert trailers["x-echo-trailer"] == "e"
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.code == 5 and status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("INJECTED", "users.example")


def test_seed_style_server_has_no_health_service(
    start_server: Callable[..., RunningServer],
) -> None:
    with open_channel(start_server(seed_style=True, compression=grpc.Compression.Gzip).target) as ch:
        reply = api_pb2_grpc.MyServiceStub(ch).User(REQ, timeout=RPC_TIMEOUT)
        assert [u.name for u in reply.data] == ["Alice"]
        with pytest.raises(grpc.RpcError) as err:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
