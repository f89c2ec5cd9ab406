"""HTTP plumbing the remote engines share: one HTTP client per backend (engines/http_client.py:
kept-alive connections, no httpx on the hot path), and errors that name the backend and its URL.

Transport failures become service errors: no connection is Unreachable, a timeout Unavailable, a
connection cut mid-reply or a body that is not the documented shape is UpstreamError. HTTP error
statuses go through the engine's own ``on_status`` (Ollama's "model not found" means something
else than vLLM's); 5xx is Unavailable for both. Streams are async context managers, so leaving
the block (a cancelled gRPC call closing the engine's iterator) closes the HTTP response and the
upstream stops generating.

A stream is read as batches of lines: every complete line that one network read brought (or
several reads, when the engine fell behind). When
the server sends faster than the chain relays (a busy machine), the engines turn a batch into
one text chunk instead of one message per token all the way to the caller; when it does not,
a batch is one line and nothing waits. With tracing on, every request carries the caller's trace
context (traceparent).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from upcoach_llm.common import tracing
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import (
    ConfigError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
    Unreachable,
    UpstreamError,
)
from upcoach_llm.engines.http_client import (
    ConnectError,
    ConnectTimeout,
    HttpClient,
    HttpTransportError,
    RemoteProtocolError,
    Response,
    TimeoutException,
)
from upcoach_llm.engines.remote_settings import RemoteSettings

StatusMapper = Callable[[int, str], ServiceError | None]
# Every connection that may be open is kept alive when idle: closing those past a smaller idle
# limit (httpx's 20) cost a connect, a socket and a close per request at 32 concurrent replies.
_MAX_CONNECTIONS = 512
_KEEPALIVE_EXPIRY_S = 30.0
_DRAIN_S = 1.0


def _json_bytes(body: Any) -> bytes:
    return orjson.dumps(body)


def _decoded(data: bytes) -> str:
    return data.decode("utf-8", "replace")


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
        try:
            self._client = HttpClient(
                self.url, headers=headers, connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout, max_connections=_MAX_CONNECTIONS,
                keepalive_expiry=_KEEPALIVE_EXPIRY_S)
        except ConfigError as exc:
            raise ConfigError(f"backend {self.name} ({self.kind}): {exc}") from None

    @property
    def where(self) -> str:
        """How errors name this backend: ``backend vllm (openai at http://vllm:8000)``."""
        return f"backend {self.name} ({self.kind} at {self.url})"

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- errors ----------------------------------------------------------------------------

    def transport_error(self, exc: HttpTransportError) -> ServiceError:
        """A failure below HTTP: unreachable and timeouts are Unavailable, cuts UpstreamError."""
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, ConnectError | ConnectTimeout):
            return Unreachable(f"{self.where} is unreachable: {detail}")
        if isinstance(exc, TimeoutException):
            return Unavailable(f"{self.where} did not answer within "
                               f"{self.settings.read_timeout:g}s ({type(exc).__name__})")
        if isinstance(exc, RemoteProtocolError):
            return UpstreamError(f"{self.where}: {detail}")  # "server closed the connection ..."
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
        content = None if body is None else _json_bytes(body)
        try:
            response = await self._client.request(method, path, content, _trace_headers())
            try:
                data = await response.read()
            finally:
                response.close()
        except HttpTransportError as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 400:
            raise self.status_error(response.status_code, _decoded(data))
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self.malformed(f"reply to {path}", exc) from None

    @asynccontextmanager
    async def stream(self, path: str, body: Any) -> AsyncIterator[AsyncIterator[list[str]]]:
        """POSTs body and yields the reply's line batches; the response closes with the block.

        A block that ends normally (the engine saw the reply's last event) reads what is left of
        the body, at most ``_DRAIN_S``: the end of a chunked reply follows its last event, and a
        connection is only reused once its response was read to the end. A block left by an
        exception (a cancelled call) closes the connection at once."""
        try:
            response = await self._client.request("POST", path, _json_bytes(body),
                                                  _trace_headers())
        except HttpTransportError as exc:
            raise self.transport_error(exc) from None
        try:
            if response.status_code >= 400:
                try:
                    data = await response.read()
                except HttpTransportError as exc:
                    raise self.transport_error(exc) from None
                raise self.status_error(response.status_code, _decoded(data))
            yield self._batches(response)
            await response.drain(_DRAIN_S)
        finally:
            response.close()

    async def _batches(self, response: Response) -> AsyncIterator[list[str]]:
        pending = b""
        try:
            while data := await response.read_some():
                if pending:
                    data = pending + data
                end = data.rfind(b"\n")
                if end < 0:
                    pending = data
                    continue
                pending = data[end + 1:]
                text = _decoded(data[:end])
                lines = text.split("\n")
                yield [line.removesuffix("\r") for line in lines] if "\r" in text else lines
        except HttpTransportError as exc:
            raise self.transport_error(exc) from None
        if pending.strip():
            yield [_decoded(pending)]

    async def ndjson(self, batches: AsyncIterator[list[str]],
                     what: str) -> AsyncIterator[list[dict]]:
        """Parses NDJSON, a batch at a time; a line that is not a JSON object is UpstreamError."""
        async for lines in batches:
            items = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise self.malformed(f"NDJSON line in {what}", line) from None
                if not isinstance(item, dict):
                    raise self.malformed(f"NDJSON line in {what}", line)
                items.append(item)
            if items:
                yield items


def _trace_headers() -> list[tuple[str, str]]:
    return list(tracing.headers().items()) if tracing.ENABLED else []
