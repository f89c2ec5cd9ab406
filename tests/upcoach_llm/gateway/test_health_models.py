"""GET /health, /api/models, /v1/models against the upstream double and the real Redis."""

from __future__ import annotations

import re

from tests.upcoach_llm.gateway.conftest import RunningGateway


async def test_health_ok_lists_services_redis_and_backends(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.get("/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok", body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
    assert body["services"] == {"router": "healthy", "generation": "healthy",
                                "embedding": "healthy", "model-registry": "healthy",
                                "redis": "healthy", "embedded": "healthy"}
    assert "details" not in body


async def test_health_down_when_the_router_is_not_serving(gateway) -> None:
    gw: RunningGateway = await gateway({"LLM_ADMIN_KEY": "ops-key"})
    await gw.double.set_serving(False)
    async with gw.client() as client:
        reply = await client.get("/health", headers={"X-API-Key": "ops-key"})
    body = reply.json()
    assert reply.status_code == 503 and body["status"] == "down"
    assert body["services"]["router"] == "unhealthy"
    assert body["details"]["router"] == "NOT_SERVING"


async def test_health_degraded_when_redis_is_unreachable(gateway) -> None:
    gw: RunningGateway = await gateway({"REDIS_URL": "redis://127.0.0.1:1/0"})
    async with gw.client() as client:
        reply = await client.get("/health")
        assert reply.status_code == 200
        assert reply.json()["services"]["redis"] == "unhealthy"
        assert reply.json()["status"] == "degraded"
        models = await client.get("/api/models")
    assert models.status_code == 200


async def test_api_models_guide_shape(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.get("/api/models")
    assert reply.status_code == 200
    body = reply.json()
    assert body["models"] == [
        {"id": "mistral", "name": "mistral", "size": 4100000000, "available": False},
        {"id": "nomic-embed-text", "name": "nomic-embed-text", "size": 274000000,
         "available": True}]
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["mistral", "nomic-embed-text"]


async def test_v1_models_openai_shape(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        listing = (await client.get("/v1/models")).json()
        one = await client.get("/v1/models/mistral")
        missing = await client.get("/v1/models/gpt-9")
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["mistral", "nomic-embed-text"]
    assert all(m["object"] == "model" for m in listing["data"])
    assert one.json()["id"] == "mistral"
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "model"
    assert missing.json()["error"]["code"] == "model_not_found"


async def test_upstream_down_is_503(gateway, double) -> None:
    gw: RunningGateway = await gateway()
    await double.server.stop(None)
    async with gw.client() as client:
        reply = await client.get("/api/models")
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "upstream_unavailable"


async def test_unknown_path_and_method_use_the_error_shape(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        missing = await client.get("/nope")
        wrong = await client.delete("/api/models")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    assert wrong.status_code == 405
