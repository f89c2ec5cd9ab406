"""The client's settings from the environment agree with the variable registry that documents
them: each service at <NAME>_ADDR, else on 127.0.0.1 at <NAME>_PORT; the call deadline's
minimum; and the on-device model's sampling defaults are the server's."""

from __future__ import annotations

import pytest

from upcoach_client import on_device
from upcoach_client.api.topology import EMBEDDING, MODEL_REGISTRY, ROUTER
from upcoach_client.config import MIN_TIMEOUT_S, ServerAddresses
from upcoach_llm.common.variables import VARIABLES

SERVICES = (ROUTER, EMBEDDING, MODEL_REGISTRY)


@pytest.fixture(autouse=True)
def clean(monkeypatch) -> None:
    for service in SERVICES:
        monkeypatch.delenv(service.addr_env, raising=False)
        monkeypatch.delenv(service.port_env, raising=False)
    monkeypatch.delenv("UPCOACH_CLIENT_TIMEOUT_S", raising=False)


def test_each_service_on_its_port_unless_its_address_is_given(monkeypatch) -> None:
    assert ServerAddresses.from_env().router == ROUTER.local_address
    for offset, service in enumerate(SERVICES):
        monkeypatch.setenv(service.port_env, str(56010 + offset))
    monkeypatch.setenv(EMBEDDING.addr_env, "dns:///embedding:50052")
    found = ServerAddresses.from_env()
    assert (found.router, found.embedding, found.registry) == (
        "127.0.0.1:56010", "dns:///embedding:50052", "127.0.0.1:56012")
    monkeypatch.setenv(ROUTER.port_env, "router")
    with pytest.raises(ValueError, match="ROUTER_PORT"):
        ServerAddresses.from_env()


def test_the_deadline_minimum_is_the_registrys(monkeypatch) -> None:
    assert VARIABLES["UPCOACH_CLIENT_TIMEOUT_S"].minimum == MIN_TIMEOUT_S
    monkeypatch.setenv("UPCOACH_CLIENT_TIMEOUT_S", str(MIN_TIMEOUT_S))
    assert ServerAddresses.from_env().timeout == MIN_TIMEOUT_S
    for bad in ("0.01", "0", "-1", "nan"):
        monkeypatch.setenv("UPCOACH_CLIENT_TIMEOUT_S", bad)
        with pytest.raises(ValueError, match="UPCOACH_CLIENT_TIMEOUT_S"):
            ServerAddresses.from_env()


def test_on_device_sampling_defaults_are_the_servers() -> None:
    server = [VARIABLES[f"GENERATION_DEFAULT_{name}"].default
              for name in ("MAX_TOKENS", "TEMPERATURE", "TOP_P")]
    client = [on_device.DEFAULT_MAX_TOKENS, on_device.DEFAULT_TEMPERATURE, on_device.DEFAULT_TOP_P]
    assert client == server
