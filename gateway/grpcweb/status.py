"""gRPC status codes as Connect codes, unchanged, and gateway refusals as Connect errors."""

from __future__ import annotations

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from gateway.errors import APIError

_REFUSALS = {401: Code.UNAUTHENTICATED, 429: Code.RESOURCE_EXHAUSTED, 503: Code.UNAVAILABLE}


def connect_code(code: grpc.StatusCode) -> Code:
    """The Connect code with the same meaning (grpc spells CANCELLED, Connect CANCELED)."""
    if code == grpc.StatusCode.CANCELLED:
        return Code.CANCELED
    return Code[code.name] if code.name in Code.__members__ else Code.UNKNOWN


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ConnectError:
    return ConnectError(connect_code(exc.code()), exc.details() or exc.code().name)


def from_refusal(error: APIError) -> ConnectError:
    return ConnectError(_REFUSALS.get(error.status, Code.INTERNAL), error.message)
