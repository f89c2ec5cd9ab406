"""X-Forwarded-For names the client only when the peer is one of TRUSTED_PROXIES; with API keys
the request budget counts each client IP of a key apart (RATE_LIMIT_SCOPE=key-ip), or the key's
callers together (key)."""

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


async def _keyed_statuses(gw: RunningGateway, calls: list[tuple[str, str]]) -> list[int]:
    async with gw.client() as client:
        return [(await client.get("/api/models", headers={
            "X-Forwarded-For": ip, "X-API-Key": key})).status_code for key, ip in calls]


KEYED = {**LIMITED, "TRUSTED_PROXIES": "127.0.0.1", "LLM_API_KEY": "key-a,key-b"}
CALLS = [("key-a", "10.0.0.1"), ("key-a", "10.0.0.1"), ("key-a", "10.0.0.2"),
         ("key-b", "10.0.0.1"), ("key-a", "10.0.0.1")]


async def test_one_key_counts_each_client_ip_apart_by_default(gateway) -> None:
    """The guide's per user/IP: the app's one key does not put every user in one bucket."""
    gw: RunningGateway = await gateway(KEYED)
    assert await _keyed_statuses(gw, CALLS) == [200, 200, 200, 200, 429]


async def test_scope_key_counts_the_keys_callers_together(gateway) -> None:
    gw: RunningGateway = await gateway({**KEYED, "RATE_LIMIT_SCOPE": "key"})
    assert await _keyed_statuses(gw, CALLS) == [200, 200, 429, 200, 429]
