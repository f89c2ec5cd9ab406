"""RemoteHttp against a real local server: the caller's trace context goes to the remote engine
when tracing is on, line batches, and transport failures as the service errors engines raise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.tracing import recorded_spans
from upcoach_llm.common import tracing
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import ConfigError, NotFound, Unavailable, UpstreamError
from upcoach_llm.dev.ports import free_port
from upcoach_llm.engines.remote_http import RemoteHttp
from upcoach_llm.engines.remote_settings import RemoteSettings

BACKEND = BackendConfig(name="vllm", type="openai", url="http://vllm:8000/v1",
                        models=["mistral"])
Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"ok\": true}\n")


async def serve(heads: list[dict[str, str]], answer: Reply = ok) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if line)
                heads.append({name.lower(): value for name, value in fields.items()})
                await reader.readexactly(int(fields.get("Content-Length", 0)))
                await answer(reader, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def remote_at(server: asyncio.Server, **settings: float) -> RemoteHttp:
    port = server.sockets[0].getsockname()[1]
    return RemoteHttp(BACKEND, f"http://127.0.0.1:{port}/v1", RemoteSettings(**settings),
                      headers={"Authorization": "Bearer key"})


@pytest.fixture
async def heads() -> AsyncIterator[list[dict[str, str]]]:
    yield []


async def _both(remote: RemoteHttp) -> None:
    await remote.request_json("GET", "/models")
    async with remote.stream("/chat/completions", {"stream": True}) as batches:
        async for _ in batches:
            pass


async def test_requests_carry_the_traceparent_while_tracing(heads) -> None:
    server = await serve(heads)
    with recorded_spans():
        remote = await remote_at(server)
        with tracing.tracer().start_as_current_span("chat mistral") as span:
            await _both(remote)
        await remote.request_json("GET", "/models")  # outside any span: a probe
        await remote.aclose()
    server.close()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert [h["traceparent"].split("-")[1] for h in heads[:2]] == [trace_id, trace_id]
    assert all(h["authorization"] == "Bearer key" for h in heads)
    assert "traceparent" not in heads[2]


async def test_no_traceparent_when_tracing_is_off(heads) -> None:
    server = await serve(heads)
    remote = await remote_at(server)
    await _both(remote)
    await remote.aclose()
    server.close()
    assert len(heads) == 2 and not any("traceparent" in h for h in heads)


async def test_a_stream_comes_as_batches_of_whole_lines(heads) -> None:
    async def pieces(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"b\r\none\r\ntwo\r\nt\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"9\r\nhree\nfour\r\n0\r\n\r\n")  # the last line has no newline

    server = await serve(heads, pieces)
    remote = await remote_at(server)
    async with remote.stream("/chat", {}) as batches:
        got = [lines async for lines in batches]
    await remote.aclose()
    server.close()
    assert got == [["one", "two"], ["three"], ["four"]]


async def test_statuses_and_transport_failures_become_service_errors(heads) -> None:
    async def missing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b'{"error": {"message": "no such model"}}'
        writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n" % len(body) + body)

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\ndata:\r\n")
        await writer.drain()
        writer.transport.abort()

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await serve(heads, missing)
    remote = await remote_at(server)
    with pytest.raises(NotFound, match="answered HTTP 404: no such model"):
        await remote.request_json("GET", "/models")
    with pytest.raises(NotFound, match="no such model"):
        async with remote.stream("/chat", {}):
            pass
    await remote.aclose()
    server.close()

    server = await serve(heads, cut)
    remote = await remote_at(server)
    with pytest.raises(UpstreamError, match="closed the connection mid-reply"):
        async with remote.stream("/chat", {}) as batches:
            async for _ in batches:
                pass
    await remote.aclose()
    server.close()

    server = await serve(heads, stalls)
    remote = await remote_at(server, read_timeout=0.2)
    with pytest.raises(Unavailable, match=r"did not answer within 0.2s \(ReadTimeout\)"):
        await remote.request_json("GET", "/models")
    await remote.aclose()
    server.close()

    nobody = RemoteHttp(BACKEND, f"http://127.0.0.1:{free_port()}", RemoteSettings())
    with pytest.raises(Unavailable, match=r"backend vllm \(openai at .*\) is unreachable"):
        await nobody.request_json("GET", "/models")
    await nobody.aclose()


def test_a_backend_url_that_is_not_http_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"backend vllm \(openai\): 'vllm:8000' is not an http"):
        RemoteHttp(BACKEND, "vllm:8000", RemoteSettings())
