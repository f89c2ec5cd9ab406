"""gRPC client channels to the other services, with the same options and credentials everywhere.

Targets may name several replicas behind one DNS name (``dns:///generation:50051``); the
round_robin policy spreads calls over every address the name resolves to, and idempotent RPCs are
retried on another replica (upcoach_llm.api.channel_config, shared with upcoach_client).
``authed`` makes every call of a stub carry the internal token (upcoach_llm.common.internal_auth).
"""

from __future__ import annotations

import functools
import re
from typing import TypeVar

import grpc

from upcoach_llm.api.channel_config import channel_options
from upcoach_llm.api.topology import Service
from upcoach_llm.common import tracing
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.server import MAX_MESSAGE_BYTES
from upcoach_llm.common.variables import VARIABLES

S = TypeVar("S")

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    *channel_options(),
]
# host:port, or a gRPC name-resolver URI: dns:///name:port, ipv4:a:p,b:p, ipv6:..., unix:path.
_TARGET = re.compile(r"^(?:(?:dns:(?://[^/]*)?/)?[^\s/:,]+|\[[0-9a-fA-F:.]+\]):\d{1,5}$"
                     r"|^(?:ipv4|ipv6):\S+$|^unix:\S+$")


def grpc_target(variable: str, value: str) -> str:
    """The value of a <NAME>_ADDR variable if gRPC can dial it, else a ConfigError naming it."""
    value = value.strip()
    if not _TARGET.match(value):
        raise ConfigError(f"{variable}: {value!r} is not host:port or a gRPC target such as "
                          "dns:///router:50054 or ipv4:10.0.0.1:50054,10.0.0.2:50054")
    return value


def service_address(service: Service) -> str:
    """Where a caller finds the service: <NAME>_ADDR, else 127.0.0.1 on <NAME>_PORT (default:
    the topology's port), as the variable registry documents."""
    value = VARIABLES.str(service.addr_env)
    if value:
        return grpc_target(service.addr_env, value)
    return f"127.0.0.1:{VARIABLES.int(service.port_env)}"


def aio_channel(target: str, auth: InternalAuth) -> grpc.aio.Channel:
    """An asyncio channel to another service of the stack: mutual TLS when configured."""
    options = CHANNEL_OPTIONS + auth.channel_options()
    credentials = auth.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


def authed(stub: S, auth: InternalAuth, *, admin: bool = False) -> S:
    """The stub, each of its methods sending the internal (or admin) token as call metadata.

    A bound keyword costs nothing per streamed message, unlike a client interceptor. With tracing
    on, each call also carries the caller's trace context (traceparent), computed per call.
    """
    metadata = auth.metadata(admin=admin)
    if metadata or tracing.ENABLED:
        for name, method in list(vars(stub).items()):
            if callable(method):
                setattr(stub, name, tracing.propagating(method, metadata) if tracing.ENABLED
                        else functools.partial(method, metadata=metadata))
    return stub
