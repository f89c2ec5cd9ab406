"""The <NAME>_ADDR values gRPC can dial: host:port, or a resolver URI naming several replicas;
without one, a service is found on 127.0.0.1 at its <NAME>_PORT."""

from __future__ import annotations

import pytest

from upcoach_llm.api.topology import GENERATION, ROUTER, Service
from upcoach_llm.common.channels import grpc_target, service_address
from upcoach_llm.common.errors import ConfigError


@pytest.mark.parametrize("value", [
    "127.0.0.1:50054", "router:50054", "dns:///router.upcoach.svc.cluster.local:50054",
    "dns://10.96.0.10/router:50054", "ipv4:10.0.0.1:50054,10.0.0.2:50054", "[::1]:50054",
    "unix:/run/router.sock"])
def test_accepted_targets(value: str) -> None:
    assert grpc_target("ROUTER_ADDR", f" {value} ") == value


@pytest.mark.parametrize("value", ["router", "router:port", "http://router:50054", "a b:1", ":1"])
def test_refused_targets_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="ROUTER_ADDR"):
        grpc_target("ROUTER_ADDR", value)


@pytest.mark.parametrize("service", [GENERATION, ROUTER])
def test_a_service_is_found_on_its_port_unless_its_address_is_given(monkeypatch,
                                                                    service: Service) -> None:
    monkeypatch.delenv(service.addr_env, raising=False)
    monkeypatch.delenv(service.port_env, raising=False)
    assert service_address(service) == service.local_address
    monkeypatch.setenv(service.port_env, "56001")
    assert service_address(service) == "127.0.0.1:56001"
    monkeypatch.setenv(service.addr_env, "dns:///elsewhere:7000")
    assert service_address(service) == "dns:///elsewhere:7000"

