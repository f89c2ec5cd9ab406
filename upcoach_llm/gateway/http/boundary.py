"""The last catch for an exception escaping the app, so it never reaches uvicorn.

uvicorn closes the connection after any exception from the app, even when a complete 500 has
been sent (Starlette's error middleware re-raises after answering), so the client's next request
on that keep-alive socket would be reset. Here, an error before the response started is answered
with the one-shape 500; after it started the error is only logged: a finished response leaves the
connection usable, an unfinished one is closed by uvicorn because its framing is broken.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.errors import APIError

log = get_logger(__name__)


class ErrorBoundary:
    """Catches every exception from the app it wraps; never re-raises."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            fields = {"path": scope.get("path", ""), "error": type(exc).__name__}
            if status is None:
                log.error("unhandled error", exc_info=exc, extra={"fields": fields})
                error = APIError(500, f"internal error: {type(exc).__name__}", code="internal")
                await error.to_response(scope.get("path", ""))(scope, receive, send)
            else:
                # The REST app's error handler has already logged the traceback.
                log.warning("error after the response started",
                            extra={"fields": {**fields, "status": status}})
