"""A grpc.health.v1 probe: is the service at an address SERVING?

    python -m upcoach_llm.common.health_probe 127.0.0.1:50051   # exit 0 when SERVING

Used by the stack launcher, the tests and the compose healthchecks. Health needs no token; with
mutual TLS (INTERNAL_TLS_*) the probe connects with the process's own certificate.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from upcoach_llm.common.internal_auth import InternalAuth, tls_from_env


def check(address: str, service: str = "", timeout: float = 2.0,
          auth: InternalAuth | None = None) -> str:
    """The serving status name (SERVING, NOT_SERVING, ...) or UNREACHABLE."""
    credentials = auth.channel_credentials() if auth is not None else None
    options = auth.channel_options() if auth is not None else []
    channel = (grpc.insecure_channel(address, options=options) if credentials is None
               else grpc.secure_channel(address, credentials, options=options))
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Exit 0 when the gRPC service at ADDRESS is SERVING.")
    parser.add_argument("address", help="host:port of the service")
    parser.add_argument("--service", default="", help="service name to check (default: the server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")
    args = parser.parse_args()
    status = check(args.address, args.service, args.timeout, InternalAuth(tls=tls_from_env()))
    print(status)
    sys.exit(0 if status == "SERVING" else 1)


if __name__ == "__main__":
    main()
