"""HTTP plumbing the remote engines share: one ``httpx.AsyncClient`` per backend, and errors
that name the backend and its URL.

Transport failures become service errors: no connection or a timeout is Unavailable, a
connection cut mid-reply or a body that is not the documented shape is UpstreamError. HTTP error
statuses go through the engine's own ``on_status`` (Ollama's "model not found" means something
else than vLLM's); 5xx is Unavailable for both. Streams are async context managers, so leaving
the block (a cancelled gRPC call closing the engine's iterator) closes the HTTP response and the
upstream stops generating.

A stream is read as batches of lines: every complete line that one network read brought. When
the server sends faster than the chain relays (a busy machine), the engines turn a batch into
one text chunk instead of one message per token all the way to the caller; when it does not,
a batch is one line and nothing waits. With tracing on, every request carries the caller's trace
context (traceparent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from upcoach_llm.common import tracing
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
    UpstreamError,
)
from upcoach_llm.engines.remote_settings import RemoteSettings

StatusMapper = Callable[[int, str], ServiceError | None]
# httpx keeps 20 idle connections by default: with more replies in flight than that, every one
# past the 20th opened a new connection and closed it afterwards (a connect, a socket and a close
# per request, measured as the router's top cost at 32 concurrent JSON replies). Keep as many
# idle as may be open.
_DRAIN_S = 1.0
_POOL_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=512,
                            keepalive_expiry=30.0)


def error_message(body: str) -> str:
    """The message of an error body: Ollama's ``error``, OpenAI's ``error.message``, ``detail``."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300] or "(empty body)"
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                return str(value)[:300]
    return body.strip()[:300]


class RemoteHttp:
    """The HTTP client of one remote backend."""

    def __init__(self, backend: BackendConfig, base_url: str, settings: RemoteSettings,
                 on_status: StatusMapper | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.name = backend.name
        self.kind = backend.type
        self.url = base_url.rstrip("/")
        self.settings = settings
        self._on_status = on_status or (lambda _status, _message: None)
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers or {}, limits=_POOL_LIMITS,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout))

    @property
    def where(self) -> str:
        """How errors name this backend: ``backend vllm (openai at http://vllm:8000)``."""
        return f"backend {self.name} ({self.kind} at {self.url})"

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- errors ----------------------------------------------------------------------------

    def transport_error(self, exc: httpx.HTTPError) -> ServiceError:
        """A failure below HTTP: unreachable and timeouts are Unavailable, cuts UpstreamError."""
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unavailable(f"{self.where} is unreachable: {detail}")
        if isinstance(exc, httpx.TimeoutException):
            return Unavailable(f"{self.where} did not answer within "
                               f"{self.settings.read_timeout:g}s ({type(exc).__name__})")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return UpstreamError(f"{self.where} closed the connection mid-reply: {detail}")
        return UpstreamError(f"{self.where}: {type(exc).__name__}: {detail}")

    def status_error(self, status: int, body: str) -> ServiceError:
        """An HTTP error status as a service error; the engine's mapper is asked first."""
        message = error_message(body)
        mapped = self._on_status(status, message)
        if mapped is not None:
            return mapped
        text = f"{self.where} answered HTTP {status}: {message}"
        if status >= 500:
            return Unavailable(text)
        if status == 429:
            return ResourceExhausted(text)
        if status == 404:
            return NotFound(text)
        if status in (400, 422):
            return InvalidArgument(text)
        if status in (401, 403):
            return FailedPrecondition(f"{text} (check the API key)")
        return UpstreamError(text)

    def malformed(self, what: str, detail: object) -> UpstreamError:
        return UpstreamError(f"{self.where} sent a malformed {what}: {str(detail)[:200]}")

    # -- requests --------------------------------------------------------------------------

    async def request_json(self, method: str, path: str, body: Any = None) -> Any:
        """One request whose reply is a JSON document."""
        try:
            response = await self._client.request(method, path, json=body,
                                                  headers=tracing.headers() or None)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 400:
            raise self.status_error(response.status_code, response.text)
        try:
            return response.json()
        except ValueError as exc:
            raise self.malformed(f"reply to {path}", exc) from None

    @asynccontextmanager
    async def stream(self, path: str, body: Any) -> AsyncIterator[AsyncIterator[list[str]]]:
        """POSTs body and yields the reply's line batches; the response closes with the block.

        A block that ends normally (the engine saw the reply's last event) reads what is left of
        the body, at most ``_DRAIN_S``: the end of a chunked reply follows its last event, and a
        connection is only reused once its response was read to the end. A block left by an
        exception (a cancelled call) closes the connection at once."""
        try:
            async with self._client.stream("POST", path, json=body,
                                           headers=tracing.headers() or None) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self.status_error(response.status_code, response.text)
                batches = self._batches(response)
                yield batches
                with contextlib.suppress(TimeoutError, ServiceError):
                    async with asyncio.timeout(_DRAIN_S):
                        async for _ in batches:
                            pass
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None

    async def _batches(self, response: httpx.Response) -> AsyncIterator[list[str]]:
        pending = ""
        try:
            async for text in response.aiter_text():
                *lines, pending = (pending + text).split("\n")
                if lines:
                    yield [line.removesuffix("\r") for line in lines]
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if pending.strip():
            yield [pending]

    async def ndjson(self, batches: AsyncIterator[list[str]],
                     what: str) -> AsyncIterator[list[dict]]:
        """Parses NDJSON, a batch at a time; a line that is not a JSON object is UpstreamError."""
        async for lines in batches:
            items = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise self.malformed(f"NDJSON line in {what}", line) from None
                if not isinstance(item, dict):
                    raise self.malformed(f"NDJSON line in {what}", line)
                items.append(item)
            if items:
                yield items
