"""The error interceptor: one place that turns exceptions into real gRPC status codes.

- ServiceError subclasses keep their code and message (INVALID_ARGUMENT, NOT_FOUND, ...).
- A failed call to another service (grpc.aio.AioRpcError) passes through with its code unchanged,
  so router and gateway callers see the status the engine raised.
- Anything else is a bug: logged with its traceback, answered INTERNAL.
It also keeps the service's RPCs UNAVAILABLE until the engine is ready (health and reflection
answer throughout) and logs one line per finished call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.common.errors import ServiceError
from services.common.logging import get_logger

log = get_logger(__name__)

_ALWAYS_OPEN = ("/grpc.health.v1.", "/grpc.reflection.")


class ReadinessGate:
    """Set once the service's engine has loaded; RPCs before that get UNAVAILABLE."""

    def __init__(self) -> None:
        self.ready = False
        self.reason = "the service is starting: its engine is still loading"


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, ServiceError):
        return exc.code, exc.message
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code(), exc.details() or exc.code().name
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"


def _log_done(method: str, started: float, code: grpc.StatusCode, message: str = "",
              exc: BaseException | None = None) -> None:
    fields = {"method": method, "code": code.name,
              "ms": round((time.perf_counter() - started) * 1000, 2)}
    if message:
        fields["error"] = message
    if code == grpc.StatusCode.INTERNAL:
        log.error("rpc failed", exc_info=exc, extra={"fields": fields})
    elif code == grpc.StatusCode.OK:
        log.debug("rpc done", extra={"fields": fields})
    else:
        log.info("rpc done", extra={"fields": fields})


def _wrap_unary(method: str, behavior: Callable[..., Awaitable[Any]],
                gate: ReadinessGate) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        if not gate.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, gate.reason)
        try:
            response = await behavior(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - this is the one place exceptions are mapped
            code, message = _status_of(exc)
            _log_done(method, started, code, message, exc)
            await context.abort(code, message)
        _log_done(method, started, grpc.StatusCode.OK)
        return response

    return handler


def _wrap_stream(method: str, behavior: Callable[..., AsyncIterator[Any]],
                 gate: ReadinessGate) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        if not gate.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, gate.reason)
        try:
            async for message in behavior(request, context):
                yield message
        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001
            code, message = _status_of(exc)
            _log_done(method, started, code, message, exc)
            await context.abort(code, message)
        _log_done(method, started, grpc.StatusCode.OK)

    return handler


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps exceptions to status codes for every unary and server-streaming RPC."""

    def __init__(self, gate: ReadinessGate) -> None:
        self._gate = gate

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_ALWAYS_OPEN):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary, self._gate),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, handler.unary_stream, self._gate),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler
