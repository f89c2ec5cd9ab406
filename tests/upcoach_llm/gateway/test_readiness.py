"""GET /livez and /readyz: public, cheap, and honest about whether a chat can be served."""

from __future__ import annotations

import asyncio
import time

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.api import router_pb2

AUTH = {"LLM_API_KEY": "tenant-key", "RATE_LIMIT_RPM": "1"}


async def ready_within(client, seconds: float = 5.0):
    """Polls /readyz until it answers 200 (the verdict is cached for about a second)."""
    deadline = time.monotonic() + seconds
    while True:
        reply = await client.get("/readyz")
        if reply.status_code == 200 or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.1)


async def test_livez_answers_without_a_key_and_without_upstreams(gateway) -> None:
    gw: RunningGateway = await gateway(AUTH)
    await gw.double.server.stop(None)
    async with gw.client() as client:
        replies = [await client.get("/livez") for _ in range(3)]
    assert [r.status_code for r in replies] == [200] * 3
    assert replies[0].json() == {"status": "alive"}
    assert "x-ratelimit-limit" not in replies[0].headers
    assert gw.double.calls.route == []


async def test_readyz_is_public_and_not_rate_limited(gateway) -> None:
    gw: RunningGateway = await gateway(AUTH)
    async with gw.client() as client:
        replies = [await client.get("/readyz") for _ in range(3)]
        chat = await client.post("/v1/chat/completions",
                                 json={"messages": [{"role": "user", "content": "hi"}]})
    assert [r.status_code for r in replies] == [200] * 3
    assert replies[0].json() == {"status": "ready"}
    assert "x-ratelimit-limit" not in replies[0].headers
    assert chat.status_code == 401


async def test_readyz_503_while_the_router_is_not_serving(gateway) -> None:
    gw: RunningGateway = await gateway()
    await gw.double.set_serving(False)
    async with gw.client() as client:
        down = await client.get("/readyz")
        await gw.double.set_serving(True)
        up = await ready_within(client)
    assert down.status_code == 503
    assert down.json() == {"error": {
        "message": "the router is not serving (NOT_SERVING)", "type": "service_unavailable_error",
        "param": None, "code": "router_not_serving"}}
    assert up.status_code == 200 and up.json() == {"status": "ready"}


async def test_readyz_503_while_no_backend_serves_the_default_model(gateway) -> None:
    gw: RunningGateway = await gateway()
    gw.double.switches.route_unavailable = True
    async with gw.client() as client:
        down = await client.get("/readyz")
        gw.double.switches.route_unavailable = False
        up = await ready_within(client)
    assert down.status_code == 503
    error = down.json()["error"]
    assert error["code"] == "no_chat_backend"
    assert error["type"] == "service_unavailable_error"
    assert "UNAVAILABLE" in error["message"]
    assert "10.0.0.7" not in down.text, "the upstream's detail names internal addresses"
    assert up.status_code == 200
    assert gw.double.calls.route[0] == router_pb2.RouteRequest()


async def test_readyz_503_when_the_router_is_unreachable(gateway) -> None:
    gw: RunningGateway = await gateway()
    await gw.double.server.stop(None)
    async with gw.client() as client:
        reply = await client.get("/readyz")
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "router_not_serving"
    assert "127.0.0.1" not in reply.text


async def test_readyz_probes_the_router_at_most_once_a_second(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        burst = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
        probes_after_burst = len(gw.double.calls.route)
        await asyncio.sleep(1.2)
        later = await client.get("/readyz")
    assert [r.status_code for r in burst] == [200] * 20
    assert probes_after_burst == 1
    assert later.status_code == 200 and len(gw.double.calls.route) == 2


async def test_openapi_lists_livez_and_readyz(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/livez" in paths and "/readyz" in paths
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert "503" in paths["/health"]["get"]["responses"]
