"""A client that leaves before the response starts cancels the request's work.

The middleware alone, driven with scripted ASGI messages; then the gateway over real sockets
against the router double, whose ``HOLD`` reply records being cancelled.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.gateway.http.disconnect import GONE_KEY, CancelOnDisconnect

BODY = {"type": "http.request", "body": b"{}", "more_body": False}
GONE = {"type": "http.disconnect"}


def scope(path: str = "/v1/chat/completions") -> dict:
    return {"type": "http", "method": "POST", "path": path, "headers": [], "state": {}}


class Connection:
    """The server side: the body, then a disconnect once ``leave`` is set."""

    def __init__(self) -> None:
        self.leave = asyncio.Event()
        self.sent: list[dict] = []
        self._pending = [BODY]

    async def receive(self) -> dict:
        if self._pending:
            return self._pending.pop(0)
        await self.leave.wait()
        return GONE

    async def send(self, message: dict) -> None:
        self.sent.append(message)


async def test_a_disconnect_before_the_response_cancels_the_app() -> None:
    connection, seen, cancelled = Connection(), [], asyncio.Event()

    async def app(scope, receive, send) -> None:
        seen.append(await receive())
        try:
            await asyncio.sleep(10)  # a model that has not answered yet
        except asyncio.CancelledError:
            cancelled.set()
            raise

    request = scope()
    served = asyncio.ensure_future(CancelOnDisconnect(app, "/rpc.")(
        request, connection.receive, connection.send))
    await asyncio.sleep(0.01)
    connection.leave.set()
    await asyncio.wait_for(served, 1)  # returns: the cancellation is not the caller's
    assert seen == [BODY] and cancelled.is_set()
    assert request["state"][GONE_KEY] is True and connection.sent == []


async def test_after_the_response_started_the_app_reads_the_disconnect_itself() -> None:
    connection = Connection()
    received = []

    async def app(scope, receive, send) -> None:
        received.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        received.append(await receive())  # a streaming response listens for the disconnect

    request = scope()
    served = asyncio.ensure_future(CancelOnDisconnect(app, "/rpc.")(
        request, connection.receive, connection.send))
    await asyncio.sleep(0.01)
    connection.leave.set()
    await asyncio.wait_for(served, 1)
    assert received == [BODY, GONE] and GONE_KEY not in request["state"]


async def test_a_cancellation_from_outside_still_propagates() -> None:
    connection = Connection()

    async def app(scope, receive, send) -> None:
        await receive()
        await asyncio.sleep(10)

    served = asyncio.ensure_future(CancelOnDisconnect(app, "/rpc.")(
        scope(), connection.receive, connection.send))
    await asyncio.sleep(0.01)
    served.cancel()
    with pytest.raises(asyncio.CancelledError):
        await served


async def test_exempt_paths_and_a_client_gone_during_its_body() -> None:
    calls = []

    async def app(scope, receive, send) -> None:
        calls.append(scope["path"])

    async def gone() -> dict:
        return GONE

    middleware = CancelOnDisconnect(app, "/rpc.")
    await middleware(scope("/rpc.Service/Method"), gone, Connection().send)
    left = scope()
    await middleware(left, gone, Connection().send)
    assert calls == ["/rpc.Service/Method"]
    assert left["state"][GONE_KEY] is True  # recorded as 499, not as the server's failure


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "HOLD"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "HOLD"}],
                              "stream": True}),
    ("/api/coaching/chat", {"messages": [{"role": "user", "content": "HOLD"}],
                            "context_type": "habits"}),
    ("/api/chat", {"model": "mistral", "messages": [{"role": "user", "content": "HOLD"}]}),
], ids=["whole", "stream", "coaching", "ollama"])
async def test_a_client_gone_before_the_reply_cancels_the_router_call(
        gateway, path: str, body: dict) -> None:
    gw: RunningGateway = await gateway({"CACHE_MODE": "off"})
    async with httpx.AsyncClient(base_url=gw.url, timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(path, json=body)
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)
    async with gw.client() as client:
        metrics = (await client.get("/metrics")).text
    assert 'status="499"' in metrics
