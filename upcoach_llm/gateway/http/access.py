"""Admission and accounting for every HTTP request.

For REST paths that need it, the Gate authenticates and spends rate-limit budget before the app
runs (refusals are answered here in the one error shape) and the X-RateLimit-* headers are added
to the response; the caller's key identity goes to ``scope["state"]["tenant"]`` (None when auth
is off), so handlers keep per-key data apart, and its rate-limit bucket (the key identity, or the
IP without keys) to ``scope["state"]["client"]`` for the token budget. Every request, grpc-web
included, is counted: in-flight gauge, status, latency, and the model the handler reports in
``scope["state"]["model"]``.
A request whose client left before the response started is recorded as 499
(http/disconnect.py).
Each request gets an id (the caller's X-Request-ID, else the trace id when tracing is on, else a
new one): on every log line of the request, in the X-Request-ID response header, and passed to the
services as request_id.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upcoach_llm.common.logging import REQUEST_ID, get_logger
from upcoach_llm.gateway.errors import CLIENT_CLOSED, APIError
from upcoach_llm.gateway.http.disconnect import GONE_KEY
from upcoach_llm.gateway.metrics.registry import GatewayMetrics
from upcoach_llm.gateway.security.gate import Gate

log = get_logger(__name__)
MODEL_KEY = "model"
REQUEST_ID_KEY = "request_id"
# Set when the request is done, for the layers outside this one (the tracing span).
ROUTE_KEY = "route"
STATUS_KEY = "status"
UNMATCHED = "unmatched"  # the route label of a request no route matched
TENANT_KEY = "tenant"
CLIENT_KEY = "client"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


class AccessMiddleware:
    """Gate for protected REST paths; metrics and access logging for all."""

    def __init__(self, app: ASGIApp, gate: Gate, metrics: GatewayMetrics,
                 gated: Callable[[str], bool]) -> None:
        self.app = app
        self.gate = gate
        self.metrics = metrics
        self.gated = gated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        request_id = _request_id(scope)
        state[REQUEST_ID_KEY] = request_id
        REQUEST_ID.set(request_id)
        status = 500
        self.metrics.started()
        try:
            extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
            if self.gated(scope["path"]):
                client = scope.get("client")
                try:
                    admission = await self.gate.admit(Headers(scope=scope),
                                                      client[0] if client else None)
                except APIError as refusal:
                    status = refusal.status
                    refusal.headers["X-Request-ID"] = request_id
                    await refusal.to_response(scope["path"])(scope, receive, send)
                    return
                state[TENANT_KEY] = admission.tenant
                state[CLIENT_KEY] = admission.client
                extra += [(k.lower().encode(), v.encode())
                          for k, v in admission.headers().items()]

            async def send_with_headers(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), *extra]
                await send(message)

            await self.app(scope, receive, send_with_headers)
        finally:
            if state.get(GONE_KEY):
                status = CLIENT_CLOSED
            seconds = time.perf_counter() - started
            route = _route_of(scope)
            state[ROUTE_KEY], state[STATUS_KEY] = route, status
            self.metrics.finished(route, scope["method"], status, state.get(MODEL_KEY, ""),
                                  seconds)
            if status >= 400:
                log.log(30 if status >= 500 else 20, "request failed",
                        extra={"fields": {"method": scope["method"], "path": scope["path"],
                                          "status": status, "ms": round(seconds * 1000, 2)}})


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is sane, else the request's trace id (tracing on: see
    upcoach_llm.gateway.http.tracing), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID.match(value):
                return value.decode()
            break
    return scope["state"].get("trace_id") or secrets.token_hex(8)


def _route_of(scope: Scope) -> str:
    """The matched route template (bounded label values), the RPC path, or "unmatched"."""
    rpc = scope.get("state", {}).get("rpc")
    if rpc:
        return rpc
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    return UNMATCHED
