"""Slow clients: headers that never finish and bodies that stall are dropped, others are served."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.rawhttp import RawResponse, connect, read_response, request_bytes

HEADER_TIMEOUT = 1.0
BODY_IDLE_TIMEOUT = 1.0
# How late a drop may come. The server and the client share one event loop, and on a loaded
# CI machine that loop can stall for most of a second; a drop that does not work at all comes
# only at the wait_for limit (timeout + 5 s), and a trickle never pauses that long.
MARGIN = 2.0
SHORT = {"GATEWAY_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT),
         "GATEWAY_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE_TIMEOUT)}
HELLO = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Writes data a byte at a time until it is all sent or the server hangs up."""
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(every)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received


def _timeout_reply(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return RawResponse(int(lines[0].split()[1]), headers, body)


async def _slow_headers(url: str) -> tuple[float, bytes]:
    """Seconds until the server dropped a client sending headers a byte per 0.3 s, and what it
    answered."""
    started = time.monotonic()  # before the server can accept, so never after its timer starts
    reader, writer = await connect(url)
    sender = asyncio.create_task(_trickle(writer, request_bytes("GET", "/v1/models"), 0.3))
    try:
        received = await asyncio.wait_for(_until_closed(reader), HEADER_TIMEOUT + 5)
        return time.monotonic() - started, received
    finally:
        sender.cancel()
        writer.close()


async def test_slow_headers_are_dropped_with_408(gateway) -> None:
    gw: RunningGateway = await gateway(SHORT)
    seconds, received = await _slow_headers(gw.url)
    assert HEADER_TIMEOUT - 0.1 <= seconds <= HEADER_TIMEOUT + MARGIN
    reply = _timeout_reply(received)
    assert reply.status == 408
    assert reply.headers["connection"] == "close"
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]["code"] == "request_timeout"
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


async def test_a_connection_that_sends_nothing_is_dropped(gateway) -> None:
    gw: RunningGateway = await gateway(SHORT)
    reader, writer = await connect(gw.url)
    started = time.monotonic()
    try:
        received = await asyncio.wait_for(_until_closed(reader), HEADER_TIMEOUT + 5)
    finally:
        writer.close()
    assert time.monotonic() - started <= HEADER_TIMEOUT + MARGIN
    assert _timeout_reply(received).status == 408


async def test_many_slow_header_sockets_are_all_closed_while_others_are_served(gateway) -> None:
    gw: RunningGateway = await gateway(SHORT)
    slow = [asyncio.create_task(_slow_headers(gw.url)) for _ in range(32)]
    await asyncio.sleep(0.3)
    async with gw.client() as client:
        served = await client.get("/metrics")
        chat = await client.post("/v1/chat/completions", content=HELLO,
                                 headers={"Content-Type": "application/json"})
    results = await asyncio.gather(*slow)
    assert served.status_code == 200 and chat.status_code == 200
    assert all(seconds <= HEADER_TIMEOUT + MARGIN + 0.5 for seconds, _ in results)
    assert all(_timeout_reply(received).status == 408 for _, received in results)


async def test_stalled_body_is_dropped_with_408(gateway) -> None:
    gw: RunningGateway = await gateway(SHORT)
    reader, writer = await connect(gw.url)
    request = request_bytes("POST", "/v1/chat/completions", HELLO)
    head, body = request[:-len(HELLO)], HELLO
    writer.write(head)
    sender = asyncio.create_task(_trickle(writer, body, 30.0))  # one byte, then a stall
    started = time.monotonic()
    try:
        received = await asyncio.wait_for(_until_closed(reader), BODY_IDLE_TIMEOUT + 5)
    finally:
        sender.cancel()
        writer.close()
    assert BODY_IDLE_TIMEOUT - 0.1 <= time.monotonic() - started <= BODY_IDLE_TIMEOUT + MARGIN
    reply = _timeout_reply(received)
    assert reply.status == 408
    assert reply.json()["error"]["code"] == "request_timeout"


async def test_a_body_that_keeps_coming_is_served(gateway) -> None:
    gw: RunningGateway = await gateway(SHORT)
    reader, writer = await connect(gw.url)
    request = request_bytes("POST", "/v1/chat/completions", HELLO)
    writer.write(request[:-len(HELLO)])
    started = time.monotonic()
    try:
        # Two bytes every 0.1 s: 2.5 s in all, longer than both timeouts together, while each
        # gap stays far below the body idle timeout even when the shared loop stalls.
        for i in range(0, len(HELLO), 2):
            await asyncio.sleep(0.1)
            writer.write(HELLO[i:i + 2])
        reply = await asyncio.wait_for(read_response(reader), 5)
    finally:
        writer.close()
    assert time.monotonic() - started > BODY_IDLE_TIMEOUT + HEADER_TIMEOUT
    assert reply.status == 200
    assert reply.json()["choices"][0]["message"]["content"] == "echo: hi"
