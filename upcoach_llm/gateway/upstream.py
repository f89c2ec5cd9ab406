"""The gRPC clients of the services the gateway fronts: router, embedding, model-registry.

One channel per service for the life of the process, with the stack's channel options and
internal credentials (upcoach_llm.common.channels): every call carries INTERNAL_TOKEN, never the
admin token, so administrative RPCs stay unreachable through the gateway. The gateway passes
requests through as protobuf messages, so the REST layer and the grpc-web proxy share these stubs.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from upcoach_llm.api import (
    embedding_pb2_grpc,
    model_registry_pb2_grpc,
    router_pb2_grpc,
)
from upcoach_llm.api.topology import EMBEDDING, GENERATION, MODEL_REGISTRY, ROUTER
from upcoach_llm.common.channels import aio_channel, authed
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.gateway.errors import from_grpc
from upcoach_llm.gateway.settings import Upstreams

T = TypeVar("T")


@dataclass
class Upstream:
    """Channels and stubs, plus a health probe per service."""

    addresses: Upstreams
    channels: dict[str, grpc.aio.Channel]
    router: router_pb2_grpc.RouterServiceStub
    embedding: embedding_pb2_grpc.EmbeddingServiceStub
    registry: model_registry_pb2_grpc.ModelRegistryServiceStub

    @classmethod
    def connect(cls, addresses: Upstreams, auth: InternalAuth) -> Upstream:
        """Opens the channels (lazily: nothing is dialled until the first call)."""
        by_name = {ROUTER.name: addresses.router, GENERATION.name: addresses.generation,
                   EMBEDDING.name: addresses.embedding, MODEL_REGISTRY.name: addresses.registry}
        channels = {name: aio_channel(address, auth) for name, address in by_name.items()}
        return cls(
            addresses=addresses,
            channels=channels,
            router=authed(router_pb2_grpc.RouterServiceStub(channels[ROUTER.name]), auth),
            embedding=authed(embedding_pb2_grpc.EmbeddingServiceStub(channels[EMBEDDING.name]),
                             auth),
            registry=authed(model_registry_pb2_grpc.ModelRegistryServiceStub(
                channels[MODEL_REGISTRY.name]), auth),
        )

    async def health(self, name: str, timeout: float) -> tuple[bool, str]:
        """Whether the named service answers its grpc.health.v1 check with SERVING."""
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return False, f"{exc.code().name}: {exc.details() or ''}".rstrip(": ")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return status == "SERVING", "" if status == "SERVING" else status

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


async def call_unary(call: Awaitable[T], family: str | None = None) -> T:
    """Awaits a unary gRPC call; a failure becomes the APIError of its status code, naming
    the failed field as the REST operation family (upcoach_llm.gateway.fields) spells it."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc, family) from None
