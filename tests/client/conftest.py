"""One real stack (generation, embedding, model-registry, router) for the client tests."""

from __future__ import annotations

import pytest

from upcoach_client import ServerAddresses
from upcoach_llm.dev.ports import free_port


@pytest.fixture(scope="module")
def client_stack(stack_factory):
    return stack_factory(["generation", "embedding", "model-registry", "router"],
                         env={"GENERATION_PARALLEL": "1", "ROUTER_HEALTH_INTERVAL_S": "0.5"})


@pytest.fixture(scope="module")
def online(client_stack) -> ServerAddresses:
    return ServerAddresses(router=client_stack.spec("router").address,
                           embedding=client_stack.spec("embedding").address,
                           registry=client_stack.spec("model-registry").address, timeout=60,
                           token=client_stack.env["INTERNAL_TOKEN"],
                           admin_token=client_stack.env["INTERNAL_ADMIN_TOKEN"])


@pytest.fixture(scope="module")
def offline() -> ServerAddresses:
    """Addresses where nothing listens: the server is unreachable."""
    ports = [free_port() for _ in range(3)]
    router, embedding, registry = (f"127.0.0.1:{p}" for p in ports)
    return ServerAddresses(router=router, embedding=embedding, registry=registry, timeout=5)
