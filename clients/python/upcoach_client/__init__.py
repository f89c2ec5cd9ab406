"""Python clients of the UpCoach LLM stack for internal services.

- ``UpcoachClient`` / ``AsyncUpcoachClient``: typed gRPC clients: chat streaming through the
  router, embeddings and content search, the model registry, the hybrid decision.
- ``HybridClient`` / ``AsyncHybridClient``: the guide's five inference modes (serverOnly,
  onDeviceOnly, onDevicePreferred, serverPreferred, auto): the server decides while it is
  reachable; on-device is llama.cpp in this process (the ``on-device`` extra), loaded on first
  use.

Addresses come from ``ServerAddresses`` (or ``ServerAddresses.from_env()``: ROUTER_ADDR,
EMBEDDING_ADDR, MODEL_REGISTRY_ADDR). Every failure is an ``UpcoachError`` with its gRPC code.
"""

from upcoach_client.aio import AsyncUpcoachClient
from upcoach_client.config import ServerAddresses
from upcoach_client.errors import UpcoachError
from upcoach_client.hybrid import AsyncHybridClient
from upcoach_client.hybrid_sync import HybridClient
from upcoach_client.on_device import OnDeviceModel
from upcoach_client.sync import UpcoachClient
from upcoach_client.types import (
    BackendInfo,
    ChatChunk,
    ChatReply,
    Decision,
    EdgeModels,
    Embeddings,
    Message,
    ModelInfo,
    PullStep,
    Route,
    SearchHit,
    Usage,
)

__all__ = [
    "AsyncHybridClient", "AsyncUpcoachClient", "BackendInfo", "ChatChunk", "ChatReply",
    "Decision", "EdgeModels", "Embeddings", "HybridClient", "Message", "ModelInfo", "OnDeviceModel",
    "PullStep", "Route", "SearchHit", "ServerAddresses", "UpcoachClient", "UpcoachError",
    "Usage",
]
