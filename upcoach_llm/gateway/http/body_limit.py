"""413 for a request body over MAX_BODY_BYTES, without reading it all.

A declared Content-Length over the limit is refused before a byte of the body is read. A body
without one (chunked) is counted as it arrives and refused as soon as it passes the limit; the
part read so far is handed on to the app as it was received. The server discards the rest of
a refused body as it arrives (closing at once would reset the connection before the client reads
the 413).

Paths under ``exempt_prefix`` (grpc-web and Connect) are left to their own server, which enforces
the same limit on each message and answers in its protocol (RESOURCE_EXHAUSTED in grpc-status or
a Connect error body): a bare 413 with a REST body is an UNKNOWN error to those clients.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upcoach_llm.gateway.errors import APIError


class BodyLimitMiddleware:
    """Enforces the request body limit for every HTTP request outside ``exempt_prefix``."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt_prefix: str | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefix = exempt_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt_prefix is not None and scope.get(
                "path", "").startswith(self.exempt_prefix)):
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _refuse(APIError(400, "Content-Length is not a number",
                                           code="invalid_header"), scope, send)
                    return
                break
        if declared is not None:
            if declared > self.max_bytes:
                await _refuse(self._too_large(), scope, send)
                return
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        buffered: list[Message] = []
        total = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                await _refuse(self._too_large(), scope, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> APIError:
        return APIError(413, f"request body is larger than the limit of {self.max_bytes} bytes",
                        code="request_too_large")


async def _refuse(error: APIError, scope: Scope, send: Send) -> None:
    await error.to_response(scope["path"])(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
