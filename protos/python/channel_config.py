"""How every client of upcoach.llm.v1 dials a service: all of its replicas, retries where safe.

A target may name several replicas: ``dns:///router:50054`` resolves to every pod behind a
Kubernetes headless Service, ``ipv4:10.0.0.1:50054,10.0.0.2:50054`` lists them. The
``round_robin`` policy keeps a connection to each and spreads calls over them; the servers close
connections after ``GRPC_MAX_CONNECTION_AGE_S`` so that clients re-resolve and replicas added
later get their share.

gRPC's service config retries, on another replica, the RPCs the protos mark ``NO_SIDE_EFFECTS``
or ``IDEMPOTENT`` when a replica answers UNAVAILABLE (it is going away or still loading). Other
RPCs (a chat stream, a pull) are never replayed: gRPC only retries them transparently when no
server saw them. Shared by the server and the client distribution (copied next to the stubs).
"""

from __future__ import annotations

import json

from google.protobuf import descriptor_pb2

from . import embedding_pb2, generation_pb2, model_registry_pb2, router_pb2

_FILES = (generation_pb2, embedding_pb2, model_registry_pb2, router_pb2)
_SAFE = (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT)

RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
# gRPC's retry throttling: each failed call costs a token, each success earns 0.1, and retries
# pause while 5 or fewer of the 10 tokens are left, so a fleet in trouble is not sent three times
# the load (and retries come back only after a run of successes).
RETRY_THROTTLING = {"maxTokens": 10, "tokenRatio": 0.1}


def retryable_methods() -> list[tuple[str, str]]:
    """(full service name, method name) of every RPC whose idempotency level allows a retry."""
    found = []
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.GetOptions().idempotency_level in _SAFE:
                    found.append((service.full_name, method.name))
    return found


def service_config() -> str:
    """The JSON service config: round_robin over every resolved address, retries as above."""
    names = [{"service": service, "method": method} for service, method in retryable_methods()]
    return json.dumps({
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}],
        "retryThrottling": RETRY_THROTTLING,
    })


def channel_options() -> list[tuple[str, object]]:
    """Options of every channel to a service of the stack, from either distribution."""
    return [
        ("grpc.service_config", service_config()),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
