"""Where the client finds the stack's services and how it proves who it is.

The services accept calls carrying the internal token (``authorization: Bearer <token>``);
administrative RPCs (pull_model) need the admin token.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TypeVar

from upcoach_client.api.topology import EMBEDDING, MODEL_REGISTRY, ROUTER, Service

DEFAULT_TIMEOUT_S = 120.0
MIN_TIMEOUT_S = 0.1


@dataclass(frozen=True)
class ServerAddresses:
    """Where each service is, the default deadline of a call in seconds, and the tokens.

    An address is host:port or any gRPC target: ``dns:///router.upcoach:50054`` spreads calls
    over every replica the name resolves to (round_robin), ``ipv4:10.0.0.1:50054,10.0.0.2:50054``
    over the ones listed."""

    router: str = ROUTER.local_address
    embedding: str = EMBEDDING.local_address
    registry: str = MODEL_REGISTRY.local_address
    timeout: float = DEFAULT_TIMEOUT_S
    token: str | None = None
    admin_token: str | None = None

    @classmethod
    def from_env(cls) -> ServerAddresses:
        """ROUTER_ADDR, EMBEDDING_ADDR, MODEL_REGISTRY_ADDR (each else 127.0.0.1 on the
        service's ROUTER_PORT, EMBEDDING_PORT, MODEL_REGISTRY_PORT), UPCOACH_CLIENT_TIMEOUT_S,
        INTERNAL_TOKEN, INTERNAL_ADMIN_TOKEN."""
        raw_timeout = os.environ.get("UPCOACH_CLIENT_TIMEOUT_S", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            raise ValueError(f"UPCOACH_CLIENT_TIMEOUT_S: {raw_timeout!r} is not a number") from None
        if not timeout >= MIN_TIMEOUT_S:
            raise ValueError(f"UPCOACH_CLIENT_TIMEOUT_S: {raw_timeout!r} must be at least "
                             f"{MIN_TIMEOUT_S:g}")
        return cls(router=_address(ROUTER), embedding=_address(EMBEDDING),
                   registry=_address(MODEL_REGISTRY),
                   timeout=timeout,
                   token=os.environ.get("INTERNAL_TOKEN") or None,
                   admin_token=os.environ.get("INTERNAL_ADMIN_TOKEN") or None)


def _address(service: Service) -> str:
    """<NAME>_ADDR, else 127.0.0.1 on <NAME>_PORT, else the service's default port."""
    address = os.environ.get(service.addr_env, "").strip()
    if address:
        return address
    port = os.environ.get(service.port_env, "").strip()
    if not port:
        return service.local_address
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{service.port_env}: {port!r} is not a port number")
    return f"127.0.0.1:{int(port)}"


S = TypeVar("S")


def with_token(stub: S, token: str | None) -> S:
    """The stub, each of its methods sending the token as call metadata."""
    if token:
        metadata = (("authorization", f"Bearer {token}"),)
        for name, method in list(vars(stub).items()):
            if callable(method):
                setattr(stub, name, functools.partial(method, metadata=metadata))
    return stub
