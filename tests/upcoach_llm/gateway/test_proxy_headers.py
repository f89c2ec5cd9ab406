"""X-Forwarded-For names the client only when the peer is one of TRUSTED_PROXIES."""

from __future__ import annotations

from tests.upcoach_llm.gateway.conftest import RunningGateway

LIMITED = {"RATE_LIMIT_RPM": "2"}


async def _statuses(gw: RunningGateway, forwarded_for: list[str]) -> list[int]:
    async with gw.client() as client:
        return [(await client.get("/api/models", headers={"X-Forwarded-For": ip})).status_code
                for ip in forwarded_for]


async def test_forwarded_for_is_ignored_by_default(gateway) -> None:
    gw: RunningGateway = await gateway(LIMITED)
    statuses = await _statuses(gw, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    assert statuses == [200, 200, 429]


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(gateway) -> None:
    gw: RunningGateway = await gateway({**LIMITED, "TRUSTED_PROXIES": "10.9.0.0/16"})
    statuses = await _statuses(gw, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    assert statuses == [200, 200, 429]


async def test_forwarded_for_names_the_client_behind_a_trusted_proxy(gateway) -> None:
    gw: RunningGateway = await gateway({**LIMITED, "TRUSTED_PROXIES": "127.0.0.1"})
    statuses = await _statuses(gw, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1",
                                    "10.0.0.1"])
    assert statuses == [200, 200, 200, 200, 429]
