"""Sends ``/upcoach.llm.v1.<Service>/<Method>`` requests to that service's Connect app.

Everything else (and the lifespan) goes to the REST app. A request for a method the proto
declares records its path in ``scope["state"]["rpc"]`` so metrics label it by method (unknown
paths share one label). The request's scope state is in ``SCOPE_STATE`` for the rest of the call
(connectrpc hands its handlers no scope): the chat RPCs report the model served there, as REST
handlers do, and read the request id the access middleware gave the request.

Plain gRPC (``application/grpc``, ``+proto``, ``+json``) needs HTTP/2 and trailers, which this
port does not serve: such a request is answered 415 with UNIMPLEMENTED and what to use instead,
rather than reaching connectrpc, which fails on the missing trailers support.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

from google.protobuf import descriptor_pool
from starlette.types import ASGIApp, Receive, Scope, Send

PATH_PREFIX = "/upcoach.llm.v1."
SCOPE_STATE: ContextVar[dict[str, Any] | None] = ContextVar("grpcweb_scope_state", default=None)


class Dispatcher:
    """Path-prefix dispatch between the REST app and the Connect apps."""

    def __init__(self, rest: ASGIApp, services: Mapping[str, ASGIApp]) -> None:
        self.rest = rest
        self.services = dict(services)
        self.methods = {f"{prefix}/{method.name}" for prefix in self.services
                        for method in descriptor_pool.Default().FindServiceByName(
                            prefix.lstrip("/")).methods}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(PATH_PREFIX):
            service, _, _method = path[1:].partition("/")
            app = self.services.get("/" + service)
            if app is not None:
                state = scope.setdefault("state", {})
                if path in self.methods:
                    state["rpc"] = path
                SCOPE_STATE.set(state)
                if _plain_grpc(scope):
                    await _refuse_plain_grpc(send)
                    return
                await app(scope, receive, send)
                return
        await self.rest(scope, receive, send)


_PLAIN_GRPC_MESSAGE = ("plain gRPC is not served on this port: use grpc-web "
                       "(application/grpc-web+proto) or Connect (application/proto, "
                       "application/json)")


def _plain_grpc(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/grpc" or kind.startswith(b"application/grpc+")
    return False


async def _refuse_plain_grpc(send: Send) -> None:
    body = _PLAIN_GRPC_MESSAGE.encode()
    await send({"type": "http.response.start", "status": 415, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"grpc-status", b"12"),  # UNIMPLEMENTED
        (b"grpc-message", quote(_PLAIN_GRPC_MESSAGE, safe=" ():,+/").encode())]})
    await send({"type": "http.response.body", "body": body})
