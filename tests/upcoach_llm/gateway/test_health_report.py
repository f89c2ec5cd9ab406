"""GET /health: 503 exactly when no chat can be served, and ``details`` only for the admin key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.gateway.health.readiness import READY_CACHE_S
from upcoach_llm.gateway.settings import GatewaySettings

ADMIN = "ops-admin-key"
KEYS = {"LLM_ADMIN_KEY": ADMIN, "LLM_API_KEY": "tenant-key"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "APP_ENV", "LLM_API_KEY", "LLM_ADMIN_KEY", "TLS_ENABLED",
                 "TLS_CERT_FILE", "TLS_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


async def test_down_and_503_when_no_backend_serves_the_default_model(gateway) -> None:
    gw: RunningGateway = await gateway(KEYS)
    gw.double.switches.route_unavailable = True
    async with gw.client() as client:
        anonymous = await client.get("/health")
        admin = await client.get("/health", headers={"Authorization": f"Bearer {ADMIN}"})
        gw.double.switches.route_unavailable = False
        back = await _after_the_shared_check(client)
    assert anonymous.status_code == 503 and admin.status_code == 503
    assert anonymous.json()["status"] == "down"
    assert "details" not in anonymous.json()
    assert "10.0.0.7" not in anonymous.text
    assert "no healthy backend serves mistral" in admin.json()["details"]["chat"]
    assert back.status_code == 200 and back.json()["status"] == "ok"


async def _after_the_shared_check(client: httpx.AsyncClient) -> httpx.Response:
    """/health once its shared check has run again (READY_CACHE_S after the last)."""
    await asyncio.sleep(READY_CACHE_S)
    return await client.get("/health")


async def test_callers_share_one_round_of_checks_a_second(gateway) -> None:
    """/health is public: a flood of it must not multiply calls to the services."""
    gw: RunningGateway = await gateway(KEYS)
    async with gw.client() as client:
        replies = await asyncio.gather(*(client.get("/health") for _ in range(20)))
        replies.append(await client.get("/health", headers={"X-API-Key": ADMIN}))
        assert {r.status_code for r in replies} == {200}
        assert len(gw.double.calls.route) == 1
        again = await _after_the_shared_check(client)
    assert again.status_code == 200 and len(gw.double.calls.route) == 2


async def test_down_when_the_router_is_not_serving(gateway) -> None:
    gw: RunningGateway = await gateway(KEYS)
    await gw.double.set_serving(False)
    async with gw.client() as client:
        reply = await client.get("/health", headers={"X-API-Key": ADMIN})
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "down" and body["services"]["router"] == "unhealthy"
    assert body["details"]["router"] == "NOT_SERVING"


async def test_degraded_but_serving_is_200_and_hides_details_from_others(gateway) -> None:
    gw: RunningGateway = await gateway({**KEYS, "REDIS_URL": "redis://127.0.0.1:1/0"})
    async with gw.client() as client:
        anonymous = await client.get("/health")
        tenant = await client.get("/health", headers={"Authorization": "Bearer tenant-key"})
        wrong = await client.get("/health", headers={"X-API-Key": ADMIN + "x"})
        admin = await client.get("/health", headers={"X-API-Key": ADMIN})
    for reply in (anonymous, tenant, wrong, admin):
        assert reply.status_code == 200
        assert reply.json()["status"] == "degraded"
        assert reply.json()["services"]["redis"] == "unhealthy"
    for reply in (anonymous, tenant, wrong):
        assert "details" not in reply.json()
        assert "127.0.0.1:1" not in reply.text
    assert "127.0.0.1:1" in admin.json()["details"]["redis"]


async def test_without_an_admin_key_nobody_sees_details(gateway) -> None:
    gw: RunningGateway = await gateway({"REDIS_URL": "redis://127.0.0.1:1/0"})
    async with gw.client() as client:
        reply = await client.get("/health", headers={"X-API-Key": ""})
    assert reply.status_code == 200 and "details" not in reply.json()


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    for name, value in {"ENVIRONMENT": "production", "LLM_API_KEY": "prod-tenant-key-1",
                        "TLS_ENABLED": "true", "TLS_CERT_FILE": str(cert),
                        "TLS_KEY_FILE": str(key)}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("admin_key", "reason"), [
    ("dev-admin", "development key"), ("changeme", "development key"),
    ("prod-tenant-key-1", "must differ from every LLM_API_KEY"),
    ("ops-7f3c9a", "at least 16 characters")])
def test_production_refuses_a_weak_admin_key(production, monkeypatch, admin_key: str,
                                             reason: str) -> None:
    monkeypatch.setenv("LLM_ADMIN_KEY", admin_key)
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.from_env()
    assert "LLM_ADMIN_KEY" in str(caught.value) and reason in str(caught.value)


def test_production_accepts_a_real_admin_key_or_none(production, monkeypatch) -> None:
    monkeypatch.setenv("LLM_ADMIN_KEY", "ops-7f3c9a2e41d86b")
    assert GatewaySettings.from_env().admin_key == "ops-7f3c9a2e41d86b"
    monkeypatch.delenv("LLM_ADMIN_KEY")
    assert GatewaySettings.from_env().admin_key is None


def test_development_allows_a_dev_admin_key(monkeypatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("LLM_ADMIN_KEY", "dev-admin")
    assert GatewaySettings.from_env().admin_key == "dev-admin"
