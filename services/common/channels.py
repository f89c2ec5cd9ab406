"""gRPC client channels to the other services, with the same options everywhere.

Targets may name several replicas behind one DNS name (``dns:///generation:50051``); the
round_robin policy spreads calls over every address the name resolves to.
"""

from __future__ import annotations

import grpc

from services.common.server import MAX_MESSAGE_BYTES

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


def aio_channel(target: str) -> grpc.aio.Channel:
    """An insecure asyncio channel to another service of the stack."""
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
