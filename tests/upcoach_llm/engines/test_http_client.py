"""The remote engines' HTTP client against real local asyncio servers that write exact bytes:
kept-alive reuse, content-length, chunked and until-close bodies, cuts, refusals, timeouts, early
closes, the connection bound and TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.support.certs import make_ca, make_cert
from upcoach_llm.dev.ports import free_port
from upcoach_llm.engines.http_client import (
    ConnectError,
    HttpClient,
    ReadTimeout,
    RemoteProtocolError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A local server; ``connections`` counts accepted sockets, ``requests`` the heads read,
    ``closed`` is set when the client closed a connection the handler was reading."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.port = 0


@asynccontextmanager
async def serving(handler: Callable[[Server, asyncio.StreamReader, asyncio.StreamWriter],
                                    Awaitable[None]],
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(server, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            server.closed.set()
        finally:
            writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def read_request(server: Server, reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (content-length bodies only: what the client sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    server.requests.append(head)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


def reply(body: bytes, *extra: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"".join(extra)
            + b"content-length: %d\r\n\r\n" % len(body) + body)


def client(server: Server, scheme: str = "http", **options: float) -> HttpClient:
    settings = {"connect_timeout": 2.0, "read_timeout": 5.0, **options}
    return HttpClient(f"{scheme}://127.0.0.1:{server.port}/v1",
                      headers={"Authorization": "Bearer key"}, **settings)


async def fetch(http: HttpClient, method: str, path: str, body: bytes | None = None,
                headers: list[tuple[str, str]] | None = None) -> bytes:
    """One request's whole reply body, the response closed."""
    response = await http.request(method, path, body, headers or [])
    try:
        return await response.read()
    finally:
        response.close()


async def echo_forever(server: Server, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
    while True:
        body = await read_request(server, reader)
        writer.write(reply(b'{"echo": ' + (body or b"null") + b"}"))
        await writer.drain()


async def test_requests_in_a_row_reuse_one_kept_alive_connection() -> None:
    async with serving(echo_forever) as server:
        http = client(server)
        for n in range(3):
            response = await http.request("POST", "/chat", b'{"n": %d}' % n,
                                          [("traceparent", "00-abc-def-01")])
            assert response.status_code == 200
            assert await response.read() == b'{"echo": {"n": %d}}' % n
            response.close()
        await http.aclose()
    assert server.connections == 1
    head = server.requests[0].decode()
    assert head.startswith("POST /v1/chat HTTP/1.1\r\n")
    for line in (f"Host: 127.0.0.1:{server.port}", "Authorization: Bearer key",
                 "Content-Type: application/json", "Content-Length: 8",
                 "traceparent: 00-abc-def-01"):
        assert f"\r\n{line}\r\n" in head


async def test_a_chunked_body_arrives_as_it_is_sent_and_then_ends() -> None:
    sent = asyncio.Event()

    async def chunked(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(server, reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                         b"6\r\nline 1\r\n1\r\n\n\r\n")
            await writer.drain()
            await sent.wait()
            writer.write(b"7\r\nline 2\n\r\n0\r\n\r\n")
            await writer.drain()

    async with serving(chunked) as server:
        http = client(server)
        response = await http.request("GET", "/stream")
        assert await response.read_some() == b"line 1\n"  # before the server sent the rest
        sent.set()
        assert await response.read_some() == b"line 2\n"
        assert await response.read_some() == b""
        response.close()
        sent.clear()
        again = await http.request("GET", "/stream")
        sent.set()
        assert await again.read() == b"line 1\nline 2\n"
        again.close()
        await http.aclose()
    assert server.connections == 1


async def test_a_body_that_ends_with_the_connection_is_read_whole_and_not_reused() -> None:
    async def until_close(server: Server, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it")
        await writer.drain()

    async with serving(until_close) as server:
        http = client(server)
        for _ in range(2):
            assert await fetch(http, "GET", "/") == b"all of it"
        await http.aclose()
    assert server.connections == 2


async def test_connection_close_from_the_server_is_not_reused() -> None:
    async def closing(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(reply(b"{}", b"connection: close\r\n"))
        await writer.drain()
        await reader.read()

    async with serving(closing) as server:
        http = client(server)
        for _ in range(2):
            assert await fetch(http, "GET", "/") == b"{}"
        await http.aclose()
    assert server.connections == 2


async def test_an_upstream_that_closes_mid_reply_is_a_protocol_error() -> None:
    async def cut(server: Server, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()

    async with serving(cut) as server:
        http = client(server)
        response = await http.request("GET", "/")
        with pytest.raises(RemoteProtocolError, match="mid-reply"):
            await response.read()
        response.close()
        await http.aclose()


async def test_a_reply_that_is_not_http_is_a_protocol_error() -> None:
    async def garbage(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serving(garbage) as server:
        http = client(server)
        with pytest.raises(RemoteProtocolError, match="malformed HTTP reply"):
            await http.request("GET", "/")
        await http.aclose()


async def test_a_refused_connection_is_a_connect_error() -> None:
    http = HttpClient(f"http://127.0.0.1:{free_port()}", connect_timeout=2.0, read_timeout=2.0)
    with pytest.raises(ConnectError):
        await http.request("GET", "/")
    await http.aclose()


async def test_no_reply_within_the_read_timeout_is_a_read_timeout() -> None:
    async def silent(server: Server, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        await reader.read()
        server.closed.set()

    async with serving(silent) as server:
        http = client(server, read_timeout=0.2)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ReadTimeout):
            await http.request("GET", "/")
        assert 0.15 < asyncio.get_running_loop().time() - started < 2.0
        await asyncio.wait_for(server.closed.wait(), 2.0)  # the client closed it
        await http.aclose()


async def test_a_stalled_body_times_out_between_reads() -> None:
    async def stalled(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await reader.read()

    async with serving(stalled) as server:
        http = client(server, read_timeout=0.2)
        response = await http.request("GET", "/")
        assert await response.read_some() == b"abc"
        with pytest.raises(ReadTimeout):
            await response.read_some()
        response.close()
        await http.aclose()


async def test_closing_a_stream_early_closes_its_connection() -> None:
    async def endless(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        while True:  # a model generating until the caller goes away
            writer.write(b"6\r\ntoken\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
            if reader.at_eof():
                raise ConnectionResetError

    async with serving(endless) as server:
        http = client(server)
        response = await http.request("POST", "/chat", b"{}")
        assert (await response.read_some()).startswith(b"token\n")
        response.close()
        await asyncio.wait_for(server.closed.wait(), 2.0)
        response = await http.request("POST", "/chat", b"{}")  # a new connection
        response.close()
        await http.aclose()
    assert server.connections == 2


def replying(body: bytes) -> Callable[
        [Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A server that answers every request with ``body``."""
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(server, reader)
            writer.write(reply(body))
            await writer.drain()

    return handler


def in_two_parts(first: bytes, rest: bytes, pause: float) -> Callable[
        [Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A server that answers every request with ``first``, then ``pause`` seconds later
    ``rest``."""
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(server, reader)
            for part in (first, rest):
                writer.write(part)
                await writer.drain()
                if part is first:
                    await asyncio.sleep(pause)

    return handler


async def test_draining_the_end_of_a_reply_keeps_the_connection() -> None:
    late_end = in_two_parts(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                            b"7\r\n[DONE]\n\r\n", b"0\r\n\r\n", 0.05)
    async with serving(late_end) as server:
        http = client(server)
        for _ in range(2):
            response = await http.request("POST", "/chat", b"{}")
            assert await response.read_some() == b"[DONE]\n"
            await response.drain(1.0)
            assert response.complete
            response.close()
        await http.aclose()
    assert server.connections == 1


def dropping_idle(connections: int) -> Callable[
        [Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A server whose first ``connections`` connections answer one request, then close on the
    next without a reply (a server dropping an idle connection); later ones echo."""
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if server.connections <= connections:
            await read_request(server, reader)
            writer.write(reply(b'"first"'))
            await writer.drain()
            await read_request(server, reader)
            return
        await echo_forever(server, reader, writer)

    return handler


async def test_a_reused_connection_dropped_before_the_reply_is_retried_once() -> None:
    async with serving(dropping_idle(1)) as server:
        http = client(server)
        for expected in (b'"first"', b'{"echo": null}'):
            assert await fetch(http, "GET", "/") == expected
        await http.aclose()
    assert server.connections == 2


async def test_idle_connections_dropped_together_are_each_retried_then_a_new_one_opens() -> None:
    """An upstream's keep-alive expiry closes every idle connection at about the same time."""
    async with serving(dropping_idle(2)) as server:
        http = client(server)
        assert await asyncio.gather(fetch(http, "GET", "/"), fetch(http, "GET", "/")) == [
            b'"first"', b'"first"']
        assert await fetch(http, "GET", "/") == b'{"echo": null}'
        await http.aclose()
    assert server.connections == 3


async def test_an_interim_1xx_reply_is_skipped_for_the_final_one() -> None:
    early_hints = in_two_parts(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n",
                               reply(b'"final"'), 0.01)

    async with serving(early_hints) as server:
        http = client(server)
        for _ in range(2):
            response = await http.request("GET", "/", None, [])
            try:
                assert response.status_code == 200
                assert dict(response.headers).get(b"link") is None
                assert await response.read() == b'"final"'
            finally:
                response.close()
        await http.aclose()
    assert server.connections == 1


async def test_requests_past_the_bound_wait_for_a_connection() -> None:
    async def slow_echo(server: Server, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(server, reader)
            await asyncio.sleep(0.05)
            writer.write(reply(b"{}"))
            await writer.drain()

    async with serving(slow_echo) as server:
        http = client(server, max_connections=2)
        assert await asyncio.gather(*(fetch(http, "GET", "/") for _ in range(5))) == [b"{}"] * 5
        await http.aclose()
    assert server.connections == 2


async def test_https_uses_tls_and_checks_the_certificate(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_cert(tmp_path, make_ca(tmp_path), "upstream")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(files.cert, files.key)
    async with serving(echo_forever, tls) as server:
        untrusting = client(server, "https")
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.request("GET", "/")
        await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(files.ca))  # OpenSSL's standard trust override
        http = client(server, "https")
        assert await fetch(http, "POST", "/x", b"1") == b'{"echo": 1}'
        await http.aclose()


async def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    async with serving(echo_forever) as server:
        http = client(server, keepalive_expiry=0.1)
        for pause in (0.0, 0.0, 0.3):
            await asyncio.sleep(pause)
            response = await http.request("GET", "/")
            await response.read()
            response.close()
        await http.aclose()
    assert server.connections == 2


async def test_a_body_larger_than_the_read_buffer_arrives_whole() -> None:
    body = bytes(range(256)) * (5 << 12)  # 5 MiB: reading pauses and resumes on the way

    async with serving(replying(body)) as server:
        http = client(server)
        response = await http.request("GET", "/")
        await asyncio.sleep(0.2)  # the server writes while nobody reads
        assert await response.read() == body
        response.close()
        assert await fetch(http, "GET", "/") == body
        await http.aclose()
    assert server.connections == 1


async def test_a_large_reply_closed_unread_leaves_a_connection_that_reads_again() -> None:
    body = b"x" * ((1 << 20) + 10)  # past the read buffer: reading paused when it all came

    async with serving(replying(body)) as server:
        http = client(server, read_timeout=1.0)
        response = await http.request("GET", "/")
        await asyncio.sleep(0.2)  # the whole reply arrives; nobody reads it
        response.close()
        assert await fetch(http, "GET", "/") == body
        await http.aclose()
    assert server.connections == 1


async def test_a_waiter_cancelled_after_it_was_woken_hands_the_connection_on() -> None:
    async with serving(echo_forever) as server:
        http = client(server, max_connections=1, read_timeout=1.0)
        first = await http.request("GET", "/")
        await first.read()
        woken = asyncio.create_task(fetch(http, "GET", "/"))
        waiting = asyncio.create_task(fetch(http, "GET", "/"))
        await asyncio.sleep(0.05)  # both wait for the one connection
        first.close()  # wakes the first waiter ...
        woken.cancel()  # ... which leaves before it runs
        assert await asyncio.wait_for(waiting, 0.5) == b'{"echo": null}'
        with pytest.raises(asyncio.CancelledError):
            await woken
        await http.aclose()


async def test_a_reused_connection_closed_after_the_server_took_the_request_is_not_retried(
        ) -> None:
    async def crashes_on_second(server: Server, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        await read_request(server, reader)
        writer.write(reply(b'"first"'))
        await writer.drain()
        await read_request(server, reader)
        await asyncio.sleep(0.3)  # working on it, then gone without a reply

    async with serving(crashes_on_second) as server:
        http = client(server)
        assert await fetch(http, "POST", "/generate", b"{}") == b'"first"'
        with pytest.raises(RemoteProtocolError, match="without a reply"):
            await http.request("POST", "/generate", b"{}")
        await http.aclose()
    assert len(server.requests) == 2 and server.connections == 1


async def test_a_reused_connection_reset_before_its_request_was_read_is_retried_late_too(
        ) -> None:
    """A reset with no reply means the server never read the request (it had bytes unread), so
    it is sent again even when the reset is seen well after the write (a loaded machine)."""
    async def resets_unread(server: Server, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        if server.connections > 1:
            await echo_forever(server, reader, writer)
            return
        await read_request(server, reader)
        writer.write(reply(b'"first"'))
        await writer.drain()
        writer.transport.pause_reading()  # the next request stays unread
        await asyncio.sleep(0.3)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with serving(resets_unread) as server:
        http = client(server)
        assert await fetch(http, "POST", "/generate", b"{}") == b'"first"'
        assert await fetch(http, "POST", "/generate", b"{}") == b'{"echo": {}}'
        await http.aclose()
    assert server.connections == 2
