"""Test hooks for the gateway's end-to-end tests, as a server interceptor.

Installed only when enabled (env ``USERS_SERVICE_TEST_HOOKS=1``, see
:func:`hooks_enabled_from_env`). Then, for every RPC on the server:

1. request metadata ``x-test-delay-ms: N`` sleeps N ms (at most
   :data:`MAX_DELAY_MS`) before anything else; the sleep ends early if the RPC
   is cancelled or its deadline passes;
2. initial metadata ``x-served-by: <socket.gethostname()>`` is sent; with
   request metadata ``x-test-echo: V`` also ``x-echo: V``, and the trailing
   metadata carries ``x-echo-trailer: V``;
3. request metadata ``x-test-fail-code: N`` aborts with gRPC status code N
   (1..16) and the message ``"injected failure"``; with ``x-test-fail-details``
   (any value) the status carries a ``google.rpc.ErrorInfo`` detail
   ``{reason: "INJECTED", domain: "users.example"}``;
4. otherwise the real handler runs.

The Go server of the interop tests (``clients/go/server``) honours the same keys.

A malformed hook value aborts with ``INVALID_ARGUMENT``. When the hooks are
disabled these metadata keys are ordinary, ignored metadata.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

log = logging.getLogger(__name__)

ENV_VAR = "USERS_SERVICE_TEST_HOOKS"
DELAY_KEY = "x-test-delay-ms"
FAIL_CODE_KEY = "x-test-fail-code"
FAIL_DETAILS_KEY = "x-test-fail-details"
ECHO_KEY = "x-test-echo"
SERVED_BY_KEY = "x-served-by"
FAILURE_MESSAGE = "injected failure"
MAX_DELAY_MS = 300_000

_CODES_BY_VALUE: dict[int, grpc.StatusCode] = {
    code.value[0]: code for code in grpc.StatusCode if code is not grpc.StatusCode.OK
}

Behavior = Callable[[Any, grpc.ServicerContext], Any]


def hooks_enabled_from_env() -> bool:
    """True when ``USERS_SERVICE_TEST_HOOKS`` is exactly ``"1"``."""
    return os.environ.get(ENV_VAR) == "1"


def _metadata_value(metadata: Sequence[tuple[str, Any]] | None, key: str) -> str | None:
    """Last value of ``key`` in the invocation metadata, or None."""
    value = None
    for k, v in metadata or ():
        if k == key:
            value = v.decode() if isinstance(v, bytes) else v
    return value


def _parse_int(context: grpc.ServicerContext, key: str, raw: str, lo: int, hi: int) -> int:
    """Parse ``raw`` as an int in ``[lo, hi]`` or abort with INVALID_ARGUMENT."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad {key}: {raw!r} (want {lo}..{hi})")
    return value  # type: ignore[return-value]  # abort() raised otherwise


def _sleep(context: grpc.ServicerContext, delay_ms: int) -> None:
    """Sleep ``delay_ms`` unless the RPC ends (cancel/deadline) first."""
    done = threading.Event()
    if not context.add_callback(done.set):
        return  # the RPC has already terminated
    done.wait(delay_ms / 1000.0)


def _status_details(code: int) -> bytes:
    """A serialized ``google.rpc.Status`` with one ``ErrorInfo`` detail, as
    grpc-status-details-bin carries it (what grpcio-status's ``to_status`` makes)."""
    status = status_pb2.Status(code=code, message=FAILURE_MESSAGE)
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(reason="INJECTED", domain="users.example")
    )
    return status.SerializeToString()


class TestHooksInterceptor(grpc.ServerInterceptor):
    """Applies the delay / served-by / fail-code hooks to every RPC."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, hostname: str | None = None) -> None:
        self.hostname = hostname or socket.gethostname()

    def _apply(self, context: grpc.ServicerContext) -> None:
        """Run the hooks for one call; returns normally if the handler should run."""
        metadata = context.invocation_metadata()
        raw_delay = _metadata_value(metadata, DELAY_KEY)
        if raw_delay is not None:
            delay = _parse_int(context, DELAY_KEY, raw_delay, 0, MAX_DELAY_MS)
            _sleep(context, delay)
            if not context.is_active():
                log.info("test hook: RPC ended during a %d ms delay", delay)
                context.abort(grpc.StatusCode.CANCELLED, "RPC ended during test delay")
        head = [(SERVED_BY_KEY, self.hostname)]
        trailers = []
        echo = _metadata_value(metadata, ECHO_KEY)
        if echo is not None:
            head.append(("x-echo", echo))
            trailers.append(("x-echo-trailer", echo))
        context.send_initial_metadata(tuple(head))
        raw_code = _metadata_value(metadata, FAIL_CODE_KEY)
        if raw_code is not None:
            code = _parse_int(context, FAIL_CODE_KEY, raw_code, 1, 16)
            if _metadata_value(metadata, FAIL_DETAILS_KEY) is not None:
                trailers.append(("grpc-status-details-bin", _status_details(code)))
            context.set_trailing_metadata(tuple(trailers))
            context.abort(_CODES_BY_VALUE[code], FAILURE_MESSAGE)
        if trailers:
            context.set_trailing_metadata(tuple(trailers))

    def _wrap(self, behavior: Behavior) -> Behavior:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            self._apply(context)
            return behavior(request, context)

        return wrapped

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Wrap the resolved handler's behaviour, whatever its streaming kind."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        serde = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._wrap(handler.unary_unary), **serde)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._wrap(handler.unary_stream), **serde)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._wrap(handler.stream_unary), **serde)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(self._wrap(handler.stream_stream), **serde)
        return handler
