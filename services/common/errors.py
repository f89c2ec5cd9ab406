"""Service errors that carry their gRPC status code.

Handlers raise these; the error interceptor turns them into the matching status. Engines and
validators raise them too, so a failure keeps its meaning from the engine up to the gateway. An
error that says when to try again (a full queue, a draining server) carries ``retry_after_s``,
which travels as a ``google.rpc.RetryInfo`` in the status details (``retry_delay_of`` reads it).
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class ServiceError(Exception):
    """An error with a gRPC status code and a message meant for the caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        if code is not None:
            self.code = code


class InvalidArgument(ServiceError):
    """The request is malformed; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    """A named thing (model, backend, item) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class OutOfRange(ServiceError):
    """A value is valid in type but past a limit (context window, prompt length)."""

    code = grpc.StatusCode.OUT_OF_RANGE


class FailedPrecondition(ServiceError):
    """The system is not in a state that allows the call (model not installed, pull unsupported)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(ServiceError):
    """A queue, quota or rate limit is full."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    """A backend or dependency cannot be reached; the call may succeed later or elsewhere."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(ServiceError):
    """The caller went away."""

    code = grpc.StatusCode.CANCELLED


class UpstreamError(ServiceError):
    """A malformed or failed answer from a remote engine (bad NDJSON, truncated SSE, HTTP 5xx)."""

    code = grpc.StatusCode.UNAVAILABLE


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the file and the key."""


def status_metadata(code: grpc.StatusCode, message: str,
                    retry_after_s: float | None) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying a google.rpc.Status with a RetryInfo, when there is a delay."""
    if retry_after_s is None:
        return ()
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(retry_after_s * 1e9))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return tuple(rpc_status.to_status(status).trailing_metadata)


def retry_delay_of(exc: grpc.aio.AioRpcError | grpc.RpcError) -> float | None:
    """The RetryInfo delay in seconds that a failed call carries, or None."""
    for key, value in exc.trailing_metadata() or ():
        if key != rpc_status.GRPC_DETAILS_METADATA_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.ToNanoseconds() / 1e9
    return None
