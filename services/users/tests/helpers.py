"""Test helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health

#: Seconds; every stub call passes an explicit timeout.
RPC_TIMEOUT = 5.0
#: Seconds to wait for a subprocess server's readiness line.
STARTUP_TIMEOUT = 20.0
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]
READY_PREFIX = "users_service listening on "


@dataclass
class RunningServer:
    """A started in-process server and the handles tests need."""

    server: grpc.Server
    port: int
    health: health.HealthServicer

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def open_channel(target: str) -> grpc.Channel:
    """An insecure channel that is connected (or fails within RPC_TIMEOUT)."""
    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
    return channel


def python_env(**overrides: str | None) -> dict[str, str]:
    """os.environ with ``overrides`` applied (None removes a variable)."""
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def spawn_service(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``python -m users_service --host 127.0.0.1 --port 0 ARGS``."""
    return subprocess.Popen(
        [sys.executable, "-m", "users_service", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_ready_line(proc: subprocess.Popen[str], timeout: float = STARTUP_TIMEOUT) -> str:
    """Wait for the readiness line on ``proc``'s stdout; return ``HOST:PORT``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise TimeoutError("no readiness line from users_service")
            line = proc.stdout.readline()
            if not line:
                _, err = proc.communicate(timeout=5)
                raise RuntimeError(f"users_service exited early ({proc.returncode}):\n{err}")
            assert line.startswith(READY_PREFIX), f"unexpected stdout line: {line!r}"
            return line[len(READY_PREFIX) :].strip()
