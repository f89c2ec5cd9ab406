"""The HTTP server span of each request, when tracing is on (upcoach_llm.common.tracing).

A pure ASGI middleware, added by the app only when tracing is on: the span starts when the request
arrives (its parent is the caller's ``traceparent`` when there is one) and ends when the response
has been sent in full, so a streamed reply's span lasts until ``[DONE]``. The span is current for
the whole request: the handlers add the GenAI attributes to it, the calls to the services carry
it as their parent, and every log line of the request has its trace id. The trace id goes to
``scope["state"]["trace_id"]``, which the access middleware uses as the request id when the caller
sent none; the access middleware (inside this one) leaves the route and status it accounted in
``scope["state"]``, which name the span and set its status (no second wrapper around ``send``).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from upcoach_llm.common import tracing
from upcoach_llm.gateway.http.access import REQUEST_ID_KEY, ROUTE_KEY, STATUS_KEY, UNMATCHED

TRACE_ID_KEY = "trace_id"


class TracingMiddleware:
    """One SERVER span per HTTP request, named ``{method} {route}``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        span = tracing.server_span(method, scope["headers"], {
            "http.request.method": method, "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http")})
        token = tracing.attach(span)
        trace_id = f"{span.get_span_context().trace_id:032x}"
        scope.setdefault("state", {})[TRACE_ID_KEY] = trace_id
        raised = False
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            raised = True  # the client went away: not a server error
            raise
        except BaseException as exc:
            raised = True
            tracing.failed(span, exc)
            raise
        finally:
            # The access layer inside this one records the route and status it accounted.
            state = scope["state"]
            route, status = state.get(ROUTE_KEY), state.get(STATUS_KEY, 500)
            if route and route != UNMATCHED:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500 and not raised:
                tracing.failed(span, None, f"HTTP {status}")
            request_id = state.get(REQUEST_ID_KEY)
            if request_id:
                span.set_attribute("upcoach.request_id", request_id)
            span.end()
            tracing.detach(token)

