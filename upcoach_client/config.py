"""Where the client finds the stack's services, from arguments or the stack's own variables."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import env_float, env_str


@dataclass(frozen=True)
class ServerAddresses:
    """host:port of each service, and the default deadline of a call in seconds."""

    router: str = "127.0.0.1:50054"
    embedding: str = "127.0.0.1:50052"
    registry: str = "127.0.0.1:50053"
    timeout: float = 120.0

    @classmethod
    def from_env(cls) -> ServerAddresses:
        """ROUTER_ADDR, EMBEDDING_ADDR, MODEL_REGISTRY_ADDR, UPCOACH_CLIENT_TIMEOUT."""
        return cls(router=env_str("ROUTER_ADDR", cls.router),
                   embedding=env_str("EMBEDDING_ADDR", cls.embedding),
                   registry=env_str("MODEL_REGISTRY_ADDR", cls.registry),
                   timeout=env_float("UPCOACH_CLIENT_TIMEOUT", cls.timeout, minimum=0.1))
