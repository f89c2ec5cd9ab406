"""The chat completions route without FastAPI's per-request machinery, for well-formed requests.

Most of the gateway's traffic is ``POST /v1/chat/completions`` (or ``/api/chat/completions``)
with a JSON body that validates. For those, FastAPI's request handling (its middleware stack,
routing, the dependency solver, query parameter parsing, ``json.loads`` then validation) costs
more than the rest of the gateway's own work. This ASGI layer, in front of the REST app, reads
the body once, parses it with orjson and validates it with the same model, then calls the same
handler (``ChatServing.create``) and sends the response it returns, with the route in
``scope["route"]`` as FastAPI's router leaves it (the metrics label).

Anything else goes to the REST app unchanged, and so does every request this layer cannot take
exactly as FastAPI would: another method, a Content-Type other than JSON, an empty body, a body
orjson refuses (FastAPI's ``json.loads`` is more lenient: NaN, big integers, UTF-16) or one that
fails validation (FastAPI words the error). Such a request's body is handed on as it was read,
so the answer is FastAPI's own. An APIError from the handler is answered as the REST app's
handler answers it, and any other exception with the same 500 as the REST app's ``on_bug``
(inside the access middleware, so the reply still carries X-Request-ID and the rate headers); a
failure after the response started is logged with its traceback, as on_bug logs it, and raised.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest
from upcoach_llm.gateway.chat.serving import ChatServing
from upcoach_llm.gateway.errors import APIError, bug_response, log_bug

# The Content-Type values FastAPI parses as JSON that this layer takes too (others go to FastAPI).
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})


class ChatFastPath:
    """Serves well-formed chat completion requests directly; hands everything else to ``app``."""

    def __init__(self, app: ASGIApp, serving: ChatServing, routes: Iterable[APIRoute]) -> None:
        self.app = app
        self.serving = serving
        self.routes = {route.path: route for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-type" and value.lower() not in _JSON_TYPES:
                await self.app(scope, receive, send)
                return
        body, messages = await _read_body(receive)
        request_body = _parse(body) if body is not None else None
        if request_body is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = route
        scope.setdefault("path_params", {})
        request = Request(scope, receive)
        request._body = body  # read here: what Request.body() would have cached
        try:
            response = await self.serving.create(request, request_body)
        except APIError as error:
            response = error.to_response(scope["path"])
        except Exception as exc:  # noqa: BLE001 - answered as the REST app's on_bug does
            response = bug_response(scope["path"], exc)
        try:
            await response(scope, receive, send)
        except Exception as exc:
            log_bug(scope["path"], exc)  # as the REST app's on_bug, before the boundary's reply
            raise


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole body (None when the client went away first) and the messages it came in."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def _parse(body: bytes) -> ChatCompletionRequest | None:
    """The validated request, or None where FastAPI must decide (and word the error)."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return ChatCompletionRequest.model_validate(data, from_attributes=True)  # as FastAPI
    except ValueError:  # pydantic's ValidationError, and a validator's own ValueError
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives the messages already read first."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
