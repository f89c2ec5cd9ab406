"""Fixtures for the gateway's own tests: the upstream double and an in-process gateway.

````gateway(env)`` builds the gateway from settings read from the environment (env overrides on top
of a per-test Redis key prefix, so tests never share rate-limit budgets or cache entries), serves
it with the same uvicorn configuration as ``python -m upcoach_llm.gateway`` on a free port in the
test's event loop, and returns a handle with its base URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis

from tests.upcoach_llm.gateway.doubles import UpstreamDouble, start_double
from upcoach_llm.dev.ports import free_port
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.server import GatewayServer, server_for
from upcoach_llm.gateway.settings import GatewaySettings

INTERNAL_TOKEN = "gateway-test-internal-token"


@dataclass
class RunningGateway:
    url: str
    deps: Dependencies
    double: UpstreamDouble
    server: GatewayServer

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def internal_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every gateway needs the internal token it presents to the services."""
    monkeypatch.setenv("INTERNAL_TOKEN", INTERNAL_TOKEN)


@pytest.fixture
async def double() -> AsyncIterator[UpstreamDouble]:
    running = await start_double()
    yield running
    await running.server.stop(None)


@pytest.fixture
async def gateway(double: UpstreamDouble, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    servers: list[tuple[GatewayServer, asyncio.Task]] = []
    prefix = f"upcoach:test:{uuid.uuid4().hex[:12]}:"

    async def start(env: dict[str, str] | None = None) -> RunningGateway:
        values = {"ROUTER_ADDR": double.address, "EMBEDDING_ADDR": double.address,
                  "MODEL_REGISTRY_ADDR": double.address, "GENERATION_ADDR": double.address,
                  "REDIS_KEY_PREFIX": prefix, "LOG_LEVEL": "info",
                  "INTERNAL_TOKEN": INTERNAL_TOKEN,
                  # The double's embeddings are not meaningful: a test turns it on to test it.
                  "SEMANTIC_CACHE_ENABLED": "false", **(env or {})}
        for name in ("LLM_API_KEY", "RATE_LIMIT_RPM", "RATE_LIMIT_TPM", "CACHE_MODE",
                     "CORS_ORIGINS", "ENVIRONMENT", "APP_ENV", "TLS_ENABLED", "REDIS_URL",
                     "MAX_BODY_BYTES", "CACHE_TTL", "RATE_LIMIT_FAIL_OPEN", "TRUSTED_PROXIES"):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        port = free_port()
        monkeypatch.setenv("GATEWAY_HOST", "127.0.0.1")
        monkeypatch.setenv("GATEWAY_PORT", str(port))
        settings = GatewaySettings.from_env()
        deps = Dependencies.build(settings)
        server = server_for(deps)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return RunningGateway(f"http://127.0.0.1:{port}", deps, double, server)

    yield start
    for server, task in servers:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
    await delete_keys(prefix)


async def delete_keys(prefix: str) -> None:
    """Removes the keys a test left in the shared Redis."""
    client = aioredis.Redis()
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
