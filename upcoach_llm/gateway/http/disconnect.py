"""Cancels a REST request's work when its client goes away before the response starts.

uvicorn never cancels an app on a disconnect (it only answers ``receive()`` with
``http.disconnect``), and Starlette's StreamingResponse listens for one only once the response
exists. Until then nobody calls ``receive()``: a whole reply (``stream: false``) would run to its
``max_tokens``, and a stream until its first token (its queue wait and prompt included), for a
client that has left, holding a generation slot all the while.

This layer reads the request's body, hands it to the app as it came, and from then on is the only
reader of the connection: an ``http.disconnect`` before ``http.response.start`` cancels the app
(the gRPC call it awaits is cancelled with it, and the router and the engine stop), and the
request is recorded as 499 (``errors.CLIENT_CLOSED``), as is one whose client left before its
body arrived. After the response started, the app's own
``receive()`` calls get the disconnect as before.

grpc-web and Connect paths (``exempt_prefix``) are left to connectrpc, which watches for the
disconnect itself.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upcoach_llm.common.logging import get_logger

log = get_logger(__name__)
GONE_KEY = "client_gone"  # scope["state"]: True once the app was cancelled for a disconnect


class CancelOnDisconnect:
    """Cancels the app when the client disconnects before the response starts."""

    def __init__(self, app: ASGIApp, exempt_prefix: str) -> None:
        self.app = app
        self.exempt_prefix = exempt_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(self.exempt_prefix):
            await self.app(scope, receive, send)
            return
        body: list[Message] = []
        while True:
            message = await receive()
            body.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        if body[-1]["type"] != "http.request":  # gone before its body arrived
            scope.setdefault("state", {})[GONE_KEY] = True
            return
        task = asyncio.current_task()
        assert task is not None
        started = False
        cancelled = False
        disconnect: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        async def watch() -> None:
            nonlocal cancelled
            message = await receive()  # the next message is the disconnect
            disconnect.set_result(message)
            if not started:
                cancelled = True
                task.cancel()

        async def replayed() -> Message:
            return body.pop(0) if body else await asyncio.shield(disconnect)

        async def observed(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        watcher = asyncio.ensure_future(watch())
        try:
            await self.app(scope, replayed, observed)
        except asyncio.CancelledError:
            if not cancelled or task.uncancel() > 0:
                raise  # cancelled by someone else too
            scope.setdefault("state", {})[GONE_KEY] = True
            log.info("client went away before the response started: request cancelled",
                     extra={"fields": {"method": scope["method"], "path": scope["path"]}})
        finally:
            watcher.cancel()
