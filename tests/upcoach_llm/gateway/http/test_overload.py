"""gateway/http/overload.py: at GATEWAY_MAX_CONNECTIONS traffic and /readyz get 503, /livez not."""

from __future__ import annotations

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.rawhttp import connect, read_response, request_bytes


async def _get(url: str, path: str) -> int:
    reader, writer = await connect(url)
    try:
        writer.write(request_bytes("GET", path))
        await writer.drain()
        return (await read_response(reader)).status
    finally:
        writer.close()


async def test_a_full_gateway_still_answers_its_liveness_probe(gateway) -> None:
    gw: RunningGateway = await gateway({"GATEWAY_MAX_CONNECTIONS": "2"})
    assert await _get(gw.url, "/livez") == 200
    held = [await connect(gw.url) for _ in range(2)]  # open connections at the cap
    try:
        assert await _get(gw.url, "/v1/models") == 503
        assert await _get(gw.url, "/readyz") == 503  # a full pod leaves the endpoints
        assert await _get(gw.url, "/livez") == 200  # but is not restarted
        assert await _get(gw.url, "/livez?verbose=1") == 200
        assert await _get(gw.url, "/livez/x") == 503
    finally:
        for _, writer in held:
            writer.close()
