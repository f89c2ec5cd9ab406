"""gRPC client channels to the other services, with the same options and credentials everywhere.

Targets may name several replicas behind one DNS name (``dns:///generation:50051``); the
round_robin policy spreads calls over every address the name resolves to. ``authed`` makes every
call of a stub carry the internal token (upcoach_llm.common.internal_auth).
"""

from __future__ import annotations

import functools
from typing import TypeVar

import grpc

from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.server import MAX_MESSAGE_BYTES

S = TypeVar("S")

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def aio_channel(target: str, auth: InternalAuth) -> grpc.aio.Channel:
    """An asyncio channel to another service of the stack: mutual TLS when configured."""
    options = CHANNEL_OPTIONS + auth.channel_options()
    credentials = auth.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


def authed(stub: S, auth: InternalAuth, *, admin: bool = False) -> S:
    """The stub, each of its methods sending the internal (or admin) token as call metadata.

    A bound keyword costs nothing per streamed message, unlike a client interceptor.
    """
    metadata = auth.metadata(admin=admin)
    if metadata:
        for name, method in list(vars(stub).items()):
            if callable(method):
                setattr(stub, name, functools.partial(method, metadata=metadata))
    return stub
