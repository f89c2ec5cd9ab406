"""The stubs both clients call, over channels of either kind (blocking or asyncio).

Every stub's calls carry the internal token; the registry's administrative RPCs (PullModel) go
through a second stub that carries the admin token instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from upcoach_client.api import embedding_pb2_grpc, model_registry_pb2_grpc, router_pb2_grpc
from upcoach_client.config import ServerAddresses, with_token


@dataclass(frozen=True)
class Stubs:
    router: router_pb2_grpc.RouterServiceStub
    embedding: embedding_pb2_grpc.EmbeddingServiceStub
    registry: model_registry_pb2_grpc.ModelRegistryServiceStub
    admin_registry: model_registry_pb2_grpc.ModelRegistryServiceStub

    @classmethod
    def over(cls, channels: Sequence[Any], addresses: ServerAddresses) -> Stubs:
        """Stubs over the router, embedding and registry channels, in that order."""
        router, embedding, registry = channels
        token = addresses.token
        return cls(
            router=with_token(router_pb2_grpc.RouterServiceStub(router), token),
            embedding=with_token(embedding_pb2_grpc.EmbeddingServiceStub(embedding), token),
            registry=with_token(model_registry_pb2_grpc.ModelRegistryServiceStub(registry),
                                token),
            admin_registry=with_token(
                model_registry_pb2_grpc.ModelRegistryServiceStub(registry),
                addresses.admin_token))
