"""Where the client finds the stack's services and how it proves who it is.

The services accept calls carrying the internal token (``authorization: Bearer <token>``);
administrative RPCs (pull_model) need the admin token.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TypeVar

from services.common.topology import EMBEDDING, MODEL_REGISTRY, ROUTER
from services.common.variables import VARIABLES as V


@dataclass(frozen=True)
class ServerAddresses:
    """host:port of each service, the default deadline of a call in seconds, and the tokens."""

    router: str = ROUTER.local_address
    embedding: str = EMBEDDING.local_address
    registry: str = MODEL_REGISTRY.local_address
    timeout: float = V["UPCOACH_CLIENT_TIMEOUT_S"].default
    token: str | None = None
    admin_token: str | None = None

    @classmethod
    def from_env(cls) -> ServerAddresses:
        """ROUTER_ADDR, EMBEDDING_ADDR, MODEL_REGISTRY_ADDR, UPCOACH_CLIENT_TIMEOUT_S,
        INTERNAL_TOKEN, INTERNAL_ADMIN_TOKEN."""
        return cls(router=V.str(ROUTER.addr_env, cls.router),
                   embedding=V.str(EMBEDDING.addr_env, cls.embedding),
                   registry=V.str(MODEL_REGISTRY.addr_env, cls.registry),
                   timeout=V.float("UPCOACH_CLIENT_TIMEOUT_S"),
                   token=V.str("INTERNAL_TOKEN") or None,
                   admin_token=V.str("INTERNAL_ADMIN_TOKEN") or None)


S = TypeVar("S")


def with_token(stub: S, token: str | None) -> S:
    """The stub, each of its methods sending the token as call metadata."""
    if token:
        metadata = (("authorization", f"Bearer {token}"),)
        for name, method in list(vars(stub).items()):
            if callable(method):
                setattr(stub, name, functools.partial(method, metadata=metadata))
    return stub
