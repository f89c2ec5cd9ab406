"""The error interceptor: one place that turns exceptions into real gRPC status codes.

- ServiceError subclasses keep their code and message (INVALID_ARGUMENT, NOT_FOUND, ...), and
  their details (the failed field, the retry delay) as google.rpc details.
- A failed call to another service (grpc.aio.AioRpcError) passes through with its code unchanged,
  so router and gateway callers see the status the engine raised.
- Request bytes that do not parse as the RPC's message are INVALID_ARGUMENT.
- Anything else is a bug: logged with its traceback, answered INTERNAL.
It first refuses calls without valid internal credentials (upcoach_llm.common.internal_auth: one
interceptor, since each layer of grpc.aio interceptor costs tens of microseconds a call), then
keeps the service's RPCs UNAVAILABLE until the engine is ready (health and reflection
answer throughout), ends the calls still running when a drain's grace runs out with UNAVAILABLE
"shutting down" (so a caller can fail over), and logs one line per finished call. With tracing on
(upcoach_llm.common.tracing) each call is a SERVER span, child of the caller's traceparent.
Status messages are cut to MAX_STATUS_CHARS: a message may echo client input, and gRPC trailers
are small.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc

from upcoach_llm.api.status_details import status_metadata
from upcoach_llm.common import tracing
from upcoach_llm.common.errors import ServiceError
from upcoach_llm.common.internal_auth import ALWAYS_OPEN, InternalAuth, refusing
from upcoach_llm.common.logging import get_logger
from upcoach_llm.common.metrics import record

log = get_logger(__name__)

MAX_STATUS_CHARS = 1024


class ReadinessGate:
    """Set once the service's engine has loaded; RPCs before that get UNAVAILABLE. At the end
    of a drain, ``shut_down`` ends every call still running with UNAVAILABLE."""

    def __init__(self, service: str = "the service") -> None:
        self.ready = False
        self.reason = f"{service} is starting: its engine is still loading"
        self.closing_reason = f"{service} is shutting down; retry the call on another replica"
        self.closing = False
        self._running: set[asyncio.Task] = set()

    def track(self) -> asyncio.Task | None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        return task

    def untrack(self, task: asyncio.Task | None) -> None:
        self._running.discard(task)  # type: ignore[arg-type]

    def shut_down(self, cancel_after: float = 0.0) -> None:
        """Ends the calls still running: each answers UNAVAILABLE with closing_reason. A stream
        ends itself at its next message; whatever still runs ``cancel_after`` seconds later (a
        unary call, a stream waiting for its next message) is cancelled. A stream is not
        cancelled first: a cancel that lands while grpc writes its message ends the call
        without a status, and the caller would wait for the server's stop instead."""
        self.closing = True
        if cancel_after > 0:
            asyncio.get_running_loop().call_later(cancel_after, self._cancel_running)
        else:
            self._cancel_running()

    def _cancel_running(self) -> None:
        for task in list(self._running):
            task.cancel()


class _Undecodable:
    """What the deserializer hands on for bytes that are not a valid request message."""

    def __init__(self, type_name: str) -> None:
        self.message = f"request: the bytes are not a valid {type_name} message"


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    type_name = getattr(getattr(deserializer, "__self__", None), "__name__", "request")

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - DecodeError, and invalid UTF-8 in string fields
            return _Undecodable(type_name)

    return parse


def clip(message: str) -> str:
    if len(message) <= MAX_STATUS_CHARS:
        return message
    return message[:MAX_STATUS_CHARS] + f"… ({len(message)} characters)"


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple]:
    """Code, message and trailing metadata (status details) of the call's failure."""
    if isinstance(exc, ServiceError):
        message = clip(exc.message)
        return exc.code, message, status_metadata(exc.code, message, exc.retry_after_s,
                                                  field=exc.field,
                                                  description=clip(exc.description))
    if isinstance(exc, grpc.aio.AioRpcError):
        details = tuple((k, v) for k, v in exc.trailing_metadata() or ()
                        if k.endswith("-bin"))
        return exc.code(), clip(exc.details() or exc.code().name), details
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded", ()
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}", ()


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str,
                 started: float) -> None:
    code, message, trailing = _status_of(exc)
    _log_done(method, started, code, message, exc)
    await context.abort(code, message, trailing_metadata=trailing)


async def _abort_closing(context: grpc.aio.ServicerContext, gate: ReadinessGate) -> None:
    """UNAVAILABLE with a zero RetryInfo: the caller may retry at once, on another replica."""
    code = grpc.StatusCode.UNAVAILABLE
    await context.abort(code, gate.closing_reason,
                        trailing_metadata=status_metadata(code, gate.closing_reason, 0.0))


def _log_done(method: str, started: float, code: grpc.StatusCode, message: str = "",
              exc: BaseException | None = None) -> None:
    seconds = time.perf_counter() - started
    record(method, code.name, seconds)
    fields = {"method": method, "code": code.name, "ms": round(seconds * 1000, 2)}
    if message:
        fields["error"] = message
    if code == grpc.StatusCode.INTERNAL:
        log.error("rpc failed", exc_info=exc, extra={"fields": fields})
    elif code == grpc.StatusCode.OK:
        log.debug("rpc done", extra={"fields": fields})
    else:
        log.info("rpc done", extra={"fields": fields})


async def _admit(request: Any, context: grpc.aio.ServicerContext, gate: ReadinessGate) -> None:
    if not gate.ready:
        await context.abort(grpc.StatusCode.UNAVAILABLE, gate.reason)
    if gate.closing:
        await _abort_closing(context, gate)
    if isinstance(request, _Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)


@contextlib.asynccontextmanager
async def _mapped(method: str, started: float, context: grpc.aio.ServicerContext,
                  gate: ReadinessGate) -> AsyncIterator[None]:
    """Around a handler's work: tracked for the drain, its exceptions turned into statuses."""
    task = gate.track()
    try:
        yield
    except grpc.aio.AbortError:
        raise
    except asyncio.CancelledError:
        if not gate.closing:
            raise
        _log_done(method, started, grpc.StatusCode.UNAVAILABLE, gate.closing_reason)
        await _abort_closing(context, gate)
    except Exception as exc:  # noqa: BLE001 - this is the one place exceptions are mapped
        await _abort(context, exc, method, started)
    finally:
        gate.untrack(task)


def _wrap_unary(method: str, behavior: Callable[..., Awaitable[Any]],
                gate: ReadinessGate) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        await _admit(request, context, gate)
        async with _mapped(method, started, context, gate):
            response = await behavior(request, context)
        _log_done(method, started, grpc.StatusCode.OK)
        return response

    return handler


def _wrap_stream(method: str, behavior: Callable[..., AsyncIterator[Any]],
                 gate: ReadinessGate) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        await _admit(request, context, gate)
        async with (_mapped(method, started, context, gate),
                    aclosing(behavior(request, context)) as messages):
            async for message in messages:
                if gate.closing:  # ended from inside: _mapped answers the closing status
                    raise asyncio.CancelledError
                yield message
        _log_done(method, started, grpc.StatusCode.OK)

    return handler


# Server span statuses per the RPC semantic conventions: a caller's mistake is not a server error.
_SERVER_ERRORS = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
                            grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL,
                            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})


def _server_span(method: str, context: grpc.aio.ServicerContext) -> Any:
    service, _, name = method.lstrip("/").rpartition("/")
    return tracing.server_span(method.lstrip("/"), context.invocation_metadata(), {
        "rpc.system": "grpc", "rpc.service": service, "rpc.method": name})


def _end_span(span: Any, context: grpc.aio.ServicerContext,
              cancelled: bool = False) -> None:
    code = grpc.StatusCode.CANCELLED if cancelled else context.code() or grpc.StatusCode.OK
    if not isinstance(code, grpc.StatusCode):
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_ERRORS:
        tracing.failed(span, None, f"{code.name}: {context.details() or ''}")
    span.end()


def _traced_unary(method: str, handler: Callable[..., Awaitable[Any]],
                  ) -> Callable[..., Awaitable[Any]]:
    async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
        span = _server_span(method, context)
        token = tracing.attach(span)
        cancelled = False
        try:
            return await handler(request, context)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            _end_span(span, context, cancelled)
            tracing.detach(token)

    return traced


def _traced_stream(method: str, handler: Callable[..., AsyncIterator[Any]],
                   ) -> Callable[..., AsyncIterator[Any]]:
    async def traced(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        span = _server_span(method, context)
        # Not detached: grpc.aio runs each call in a task of its own, whose context ends with it
        # (a generator may be closed from another context, where a detach would fail).
        tracing.attach(span)
        cancelled = False
        try:
            async with aclosing(handler(request, context)) as messages:
                async for message in messages:
                    yield message
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            _end_span(span, context, cancelled)

    return traced


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Checks credentials and maps exceptions to status codes for every unary and
    server-streaming RPC."""

    def __init__(self, gate: ReadinessGate, auth: InternalAuth) -> None:
        self._gate = gate
        self._auth = auth
        self._traced = tracing.ENABLED

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        refusal = self._auth.refusal(method, handler_call_details.invocation_metadata)
        if refusal is not None:
            return refusing(handler, *refusal)
        if method.startswith(ALWAYS_OPEN):
            return handler
        if handler.unary_unary is not None:
            unary = _wrap_unary(method, handler.unary_unary, self._gate)
            return grpc.unary_unary_rpc_method_handler(
                _traced_unary(method, unary) if self._traced else unary,
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            stream = _wrap_stream(method, handler.unary_stream, self._gate)
            return grpc.unary_stream_rpc_method_handler(
                _traced_stream(method, stream) if self._traced else stream,
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        return handler
