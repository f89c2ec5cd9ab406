"""A lean asyncio HTTP/1.1 client for the remote engines' hot path: one backend, kept-alive
connections, requests written in one buffer, responses parsed by httptools (llhttp).

httpx cost the router about half its CPU per relayed reply (its layers: httpcore, anyio, the
request and response models, header normalisation); this does only what RemoteHttp needs: one
base URL (http or https), a request with an optional body, a response read whole or as it
arrives. Chunked and content-length bodies, and bodies that end with the connection, are
decoded by the parser. No proxies, redirects, cookies or content codings (requests say
``Accept-Encoding: identity``).

Connections: a pool per client, at most ``max_connections`` open (a request past that waits for
one, up to the read timeout), idle ones kept ``keepalive_expiry`` seconds, the most recently used
taken first. A connection goes back to the pool only once its response was read to the end and
the server keeps it alive; a response closed before that closes its connection (a cancelled
stream: the server sees the socket close and stops). A reused connection that the server closes
right after the request was written, before any byte of the reply (it dropped the idle
connection as the request went out), is retried on the next idle connection, else a new one (an
upstream's keep-alive expiry drops all the idle ones together); a close that comes later is not
retried, as the server may have acted on the request. Interim replies (100 Continue, 103 Early
Hints) are skipped: the response is the final one.

Failures are ``HttpTransportError`` subclasses: ``ConnectError`` (refused, unresolvable, TLS
handshake), ``ConnectTimeout``, ``ReadTimeout`` (no byte for the read timeout while a response
was awaited), ``PoolTimeout``, and ``RemoteProtocolError`` (closed mid-reply, not HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

import httptools

from upcoach_llm.common.errors import ConfigError

_HIGH_WATER = 1 << 20  # buffered body bytes before the socket stops being read
# A reused connection closed this soon after a request was written, with no byte of reply, was
# dropped by the server while idle (the request never reached it): the request is sent again.
# Later, the server may have acted on it (a POST that generates, pulls, creates): not retried,
# unless the close was a reset: a socket closed with bytes unread answers RST, one that read
# them all FIN, so a reset with no reply says the request was never read, however late it came
# (on a loaded machine the loop may see it well after the write).
_STALE_CLOSE_S = 0.1
_USER_AGENT = "upcoach-llm"


class HttpTransportError(Exception):
    """A failure below HTTP statuses."""


class ConnectError(HttpTransportError):
    """The server could not be reached: refused, not resolvable, TLS handshake failed."""


class RemoteProtocolError(HttpTransportError):
    """The connection closed mid-reply, or the server did not speak HTTP/1.1."""


class TimeoutException(HttpTransportError):
    """A timeout; the subclass says which."""


class ConnectTimeout(TimeoutException):
    """No connection within the connect timeout."""


class ReadTimeout(TimeoutException):
    """No byte of the awaited response within the read timeout."""


class PoolTimeout(TimeoutException):
    """Every connection stayed busy for the read timeout."""


class _Connection(asyncio.Protocol):
    """One socket and the response being read on it, one at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self.sent_at = self.lost_at = 0.0
        self.reset = False  # closed by the peer with a reset (RST)
        self._parser: httptools.HttpResponseParser | None = None
        self._lost: BaseException | None = None
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._received = False
        self._headers_done = False
        self._complete = False
        self._keep_alive = False
        self._interim = False
        self._until_eof = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._timeout = read_timeout
        self._deadline = 0.0
        self.pooled = True
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # bytes while idle: nothing was asked, the connection is spoilt
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"malformed HTTP reply: {exc}"))
            self.close()
            return
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost_at = self._loop.time()
        self.reset = isinstance(exc, ConnectionResetError)
        self._cancel_timer()
        if self._parser is not None and not self._complete:
            if self._until_eof and self._headers_done and exc is None:
                self._complete = True
            else:
                detail = f": {exc}" if exc else ""
                self._fail(RemoteProtocolError(
                    ("server closed the connection mid-reply" if self._received
                     else "server closed the connection without a reply") + detail))
        self._wake()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue, 103 Early Hints: the reply follows
            self.headers = []
            return
        self.status = status
        self._headers_done = True
        names = {name.lower() for name, _ in self.headers}
        self._until_eof = (b"content-length" not in names
                           and b"transfer-encoding" not in names)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        assert self._parser is not None
        if self._interim:
            self._interim = False
            return
        self._keep_alive = self._parser.should_keep_alive()  # llhttp forgets it after the feed
        self._complete = True

    # -- for the client --------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Starts a request: ``data`` is its head and body."""
        self._parser = httptools.HttpResponseParser(self)
        self._lost = None
        self._body = []
        self._buffered = 0
        self._received = self._headers_done = self._complete = self._until_eof = False
        self._keep_alive = self._interim = False
        self.status = 0
        self.headers = []
        assert self.transport is not None
        self.sent_at = self._loop.time()
        self.transport.write(data)

    @property
    def stale(self) -> bool:
        """A reused connection the server had dropped: closed without any byte of the reply,
        right after the request was written or by a reset (see _STALE_CLOSE_S)."""
        return (self.reused and self.closed and not self._received
                and (self.reset or self.lost_at - self.sent_at < _STALE_CLOSE_S))

    async def head(self) -> None:
        """Waits for the status line and headers."""
        while not self._headers_done:
            await self._wait()

    async def read_some(self) -> bytes:
        """The body bytes that arrived since the last call, waiting for some; b"" at the end."""
        while True:
            if self._body:
                return self._take()
            if self._complete:
                return b""
            await self._wait()

    async def drain(self, timeout: float) -> None:
        """Discards the rest of the body, waiting at most ``timeout`` for its end."""
        deadline = self._loop.time() + timeout
        while True:
            self._take()
            left = deadline - self._loop.time()
            if self._complete or left <= 0:
                return
            await self._wait(left)

    def _take(self) -> bytes:
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def reusable(self) -> bool:
        """Read to the end and kept alive by the server."""
        return self._complete and self._keep_alive and not self.closed

    def finished(self) -> None:
        """The response was handed over; the connection awaits the next request."""
        self._parser = None
        self._body = []
        self._buffered = 0
        self._cancel_timer()
        if self._paused and self.transport is not None:  # a large reply closed unread
            self._paused = False
            self.transport.resume_reading()

    async def _wait(self, timeout: float | None = None) -> None:
        if self._lost is not None:
            raise self._lost
        if self.closed and not self._complete:
            raise RemoteProtocolError("server closed the connection mid-reply")
        self._waiter = self._loop.create_future()
        self._timeout = self._read_timeout if timeout is None else timeout
        self._deadline = self._loop.time() + self._timeout
        if self._timer is not None and self._timer.when() > self._deadline:
            self._cancel_timer()
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._lost = self._lost or exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _check_deadline(self) -> None:
        # One timer per wait at most: it moves to the latest deadline instead of being re-armed
        # for every read.
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return
        if self._loop.time() >= self._deadline:
            self._waiter.set_exception(ReadTimeout(f"no data within {self._timeout:g}s"))
        else:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()


class Response:
    """A response whose headers were read; its body is read with ``read_some`` or ``read``."""

    def __init__(self, client: HttpClient, connection: _Connection) -> None:
        self._client = client
        self._connection: _Connection | None = connection
        self.status_code = connection.status
        self.headers = connection.headers

    async def read_some(self) -> bytes:
        """The body bytes that arrived since the last call (one network read, or several when
        the reader fell behind), waiting for some; b"" once the body ended."""
        if self._connection is None:
            return b""
        return await self._connection.read_some()

    async def read(self) -> bytes:
        """The rest of the body."""
        parts = []
        while data := await self.read_some():
            parts.append(data)
        return b"".join(parts)

    @property
    def complete(self) -> bool:
        return self._connection is None or self._connection.complete

    async def drain(self, timeout: float) -> None:
        """Reads what is left of the body, waiting at most ``timeout`` for its end, so that the
        connection can be reused; a failure meanwhile only means it will not be."""
        if self._connection is not None:
            with contextlib.suppress(HttpTransportError):
                await self._connection.drain(timeout)

    def close(self) -> None:
        """Hands the connection back when the body was read to the end, else closes it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._client._release(connection)


class HttpClient:
    """Requests to one server (``base_url``) over a pool of kept-alive HTTP/1.1 connections."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None,
                 connect_timeout: float, read_timeout: float, max_connections: int = 512,
                 keepalive_expiry: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{base_url!r} is not an http(s) URL like http://host:port")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        default_port = self._port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        authority = host if default_port else f"{host}:{self._port}"
        self._fixed = _header_lines([("Host", authority), ("User-Agent", _USER_AGENT),
                                     ("Accept", "*/*"), ("Accept-Encoding", "identity"),
                                     *(headers or {}).items()])
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self._slots: deque[asyncio.Future[None]] = deque()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: Iterable[tuple[str, str]] = (),
                      content_type: str = "application/json") -> Response:
        """Sends a request and returns once the response's headers came; the caller reads the
        body and closes the response (``async with``-free on purpose: the hot path)."""
        head = [method.encode(), b" ", (self._prefix + path).encode(), b" HTTP/1.1\r\n",
                self._fixed]
        if body is not None:
            head.append(b"Content-Type: %s\r\nContent-Length: %d\r\n"
                        % (content_type.encode(), len(body)))
        if headers:
            head.append(_header_lines(headers))
        head.append(b"\r\n")
        if body:
            head.append(body)
        data = b"".join(head)
        while True:
            connection = await self._acquire()
            try:
                connection.send(data)
                await connection.head()
            except RemoteProtocolError:
                # Idle connections the server dropped together (an upstream's keep-alive
                # expiry, a restart) are tried and discarded one by one; a new connection is
                # never stale, so the loop ends at the first fresh one.
                retry = connection.stale
                self._discard(connection)
                if retry:
                    continue
                raise
            except BaseException:
                self._discard(connection)
                raise
            return Response(self, connection)

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._discard(self._idle.pop())

    # -- the pool --------------------------------------------------------------------------

    async def _acquire(self) -> _Connection:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive_expiry:
                connection.reused = True
                return connection
            self._discard(connection)
        if self._closed:
            raise ConnectError("the client is closed")
        if self._open >= self._max_connections:
            slot = loop.create_future()
            self._slots.append(slot)
            try:
                async with asyncio.timeout(self._read_timeout):
                    await slot
            except TimeoutError:
                self._pass_on(slot)
                raise PoolTimeout(f"all {self._max_connections} connections stayed busy for "
                                  f"{self._read_timeout:g}s") from None
            except BaseException:
                self._pass_on(slot)
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._slots.remove(slot)
            return await self._acquire()
        self._open += 1
        try:
            return await self._connect(loop)
        except BaseException:
            self._open -= 1
            self._free_slot()
            raise

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        connection = _Connection(loop, self._read_timeout)
        tls = self._tls_context() if self._tls else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(lambda: connection, self._host, self._port,
                                             ssl=tls, server_hostname=self._host if tls else None)
        except TimeoutError:
            connection.close()
            raise ConnectTimeout(f"no connection within {self._connect_timeout:g}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from None
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            with contextlib.suppress(ImportError):
                import certifi  # httpx's trust store, kept for servers it verified
                context.load_verify_locations(cafile=certifi.where())
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def _release(self, connection: _Connection) -> None:
        if connection.reusable and not self._closed:
            connection.finished()
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)
            self._free_slot()
        else:
            self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        connection.finished()
        connection.close()
        if connection.pooled:
            connection.pooled = False
            self._open -= 1
            self._free_slot()

    def _pass_on(self, slot: asyncio.Future[None]) -> None:
        """A waiter leaving (cancelled, timed out) after it was woken hands the wake-up on."""
        if slot.done() and not slot.cancelled():
            self._free_slot()

    def _free_slot(self) -> None:
        while self._slots:
            slot = self._slots.popleft()
            if not slot.done():
                slot.set_result(None)
                return


def _header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    lines = []
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")
