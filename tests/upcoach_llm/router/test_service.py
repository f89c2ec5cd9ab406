"""The router's settings from the environment: it finds the generation service as every other
caller does (GENERATION_ADDR, else GENERATION_PORT on 127.0.0.1) and reads the circuit's
threshold."""

from __future__ import annotations

from upcoach_llm.api.topology import GENERATION
from upcoach_llm.router.service import RouterSettings


def test_the_router_finds_generation_on_its_port(monkeypatch) -> None:
    monkeypatch.delenv(GENERATION.addr_env, raising=False)
    monkeypatch.setenv(GENERATION.port_env, "56002")
    monkeypatch.setenv("INTERNAL_TOKEN", "t" * 32)
    monkeypatch.setenv("ROUTER_CIRCUIT_FAILURES", "5")
    settings = RouterSettings.from_env()
    assert settings.generation_addr == "127.0.0.1:56002"
    assert settings.circuit_failures == 5
