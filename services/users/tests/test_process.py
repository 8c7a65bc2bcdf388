"""The real entry points as subprocesses: `python -m users_service` and
`python -m users_service.healthcheck`."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import api_pb2
import api_pb2_grpc
from helpers import (
    CHANNEL_OPTIONS,
    RPC_TIMEOUT,
    RunningServer,
    python_env,
    read_ready_line,
    spawn_service,
)
from users_service import healthcheck
from users_service.hooks import ENV_VAR

EXIT_TIMEOUT = 20.0


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Collects spawned processes and kills any still running at teardown."""
    spawned: list[subprocess.Popen[str]] = []
    yield spawned
    for proc in spawned:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=EXIT_TIMEOUT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_main_serves_and_exits_zero_on_signal(
    procs: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    proc = spawn_service(python_env(**{ENV_VAR: None}))
    procs.append(proc)
    target = read_ready_line(proc)
    assert target.startswith("127.0.0.1:") and int(target.rsplit(":", 1)[1]) > 0

    with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as ch:
        reply = api_pb2_grpc.MyServiceStub(ch).User(
            api_pb2.UserReq(userIDs=[2]), timeout=RPC_TIMEOUT, wait_for_ready=True
        )
    assert [u.name for u in reply.data] == ["Bob"]

    proc.send_signal(sig)
    out, err = proc.communicate(timeout=EXIT_TIMEOUT)
    assert proc.returncode == 0, err
    assert out == ""  # the readiness line was the only stdout output
    assert "NOT_SERVING" in err


def test_sigterm_drains_in_flight_request(procs: list[subprocess.Popen[str]]) -> None:
    proc = spawn_service(python_env(**{ENV_VAR: "1"}))
    procs.append(proc)
    target = read_ready_line(proc)

    with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as ch:
        stub = api_pb2_grpc.MyServiceStub(ch)
        grpc.channel_ready_future(ch).result(timeout=RPC_TIMEOUT)
        # The env var turned the hooks on in the subprocess.
        _, call = stub.User.with_call(api_pb2.UserReq(), timeout=RPC_TIMEOUT)
        assert "x-served-by" in dict(call.initial_metadata())

        slow = stub.User.future(
            api_pb2.UserReq(userIDs=[3]),
            timeout=RPC_TIMEOUT,
            metadata=[("x-test-delay-ms", "1000")],
        )
        # The slow call went out first on the same connection, so once this
        # Check has been answered the server has accepted the slow call.
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
        proc.send_signal(signal.SIGTERM)
        reply = slow.result(timeout=RPC_TIMEOUT)
    assert [u.name for u in reply.data] == ["Carol"]
    proc.communicate(timeout=EXIT_TIMEOUT)
    assert proc.returncode == 0


def test_healthcheck_main_exit_codes(start_server: Callable[..., RunningServer]) -> None:
    running = start_server(test_hooks=False)
    assert healthcheck.main([running.target]) == 0
    assert healthcheck.main([running.target, "--service", "MyService"]) == 0
    assert healthcheck.main([running.target, "--service", "Nope"]) == 1
    running.health.enter_graceful_shutdown()
    assert healthcheck.main([running.target]) == 1
    running.server.stop(grace=None).wait()
    assert healthcheck.main([running.target, "--timeout", "2"]) == 1  # nothing listening


def test_healthcheck_module_subprocess(start_server: Callable[..., RunningServer]) -> None:
    running = start_server(test_hooks=False)
    cmd = [sys.executable, "-m", "users_service.healthcheck", running.target]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=EXIT_TIMEOUT)
    assert ok.returncode == 0, ok.stderr
    assert "SERVING" in ok.stdout
    running.health.enter_graceful_shutdown()
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=EXIT_TIMEOUT)
    assert bad.returncode == 1
    assert "NOT_SERVING" in bad.stdout


def test_grpc_option_flag_parses_name_value_pairs() -> None:
    from users_service.__main__ import parse_args

    args = parse_args(
        [
            "--grpc-option",
            "grpc.http2.max_ping_strikes=2",
            "--grpc-option",
            "grpc.primary_user_agent=users",
        ]
    )
    assert args.grpc_options == [
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.primary_user_agent", "users"),
    ]
    with pytest.raises(SystemExit):
        parse_args(["--grpc-option", "no-equals-sign"])
