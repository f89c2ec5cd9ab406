"""Service errors that carry their gRPC status code.

Handlers raise these; the error interceptor turns them into the matching status. Engines and
validators raise them too, so a failure keeps its meaning from the engine up to the gateway. What
a caller acts on travels as data in the status details (``status_metadata``), never as text to
parse: an error that says when to try again (a full queue, a draining server) carries
``retry_after_s``, sent as a ``google.rpc.RetryInfo`` (``retry_delay_of`` reads it); an error about
one request field carries ``field``, sent as a ``google.rpc.BadRequest`` with one field violation
(``field_of`` reads it).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class ServiceError(Exception):
    """An error with a gRPC status code and a message meant for the caller.

    With ``field`` (the request field's path, ``messages[1].content``), ``message`` describes
    what is wrong with it and the caller reads ``"messages[1].content: must not be empty"``.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None,
                 retry_after_s: float | None = None, field: str | None = None) -> None:
        self.description = message
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)
        self.retry_after_s = retry_after_s
        self.field = field or None
        if code is not None:
            self.code = code


class InvalidArgument(ServiceError):
    """The request is malformed; ``field`` names the field."""

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


class UpstreamError(ServiceError):
    """A malformed or failed answer from a remote engine (bad NDJSON, truncated SSE, HTTP 5xx)."""

    code = grpc.StatusCode.UNAVAILABLE


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the file and the key."""


def status_metadata(code: grpc.StatusCode, message: str, retry_after_s: float | None = None, *,
                    field: str | None = None, description: str = "",
                    ) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying a google.rpc.Status whose details hold a RetryInfo when there
    is a delay and a BadRequest when a field failed (``description`` says how); none without."""
    details = []
    if retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after_s * 1e9))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    if field:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)]))
    if not details:
        return ()
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return tuple(rpc_status.to_status(status).trailing_metadata)


def details_of(exc: grpc.aio.AioRpcError | grpc.RpcError) -> list[any_pb2.Any]:
    """The google.rpc.Status details a failed call carries (none when it sent no Status)."""
    for key, value in exc.trailing_metadata() or ():
        if key == rpc_status.GRPC_DETAILS_METADATA_KEY:
            return list(status_pb2.Status.FromString(value).details)
    return []


def _unpacked(exc: grpc.aio.AioRpcError | grpc.RpcError, kind: type[Message]) -> Iterator[Message]:
    for detail in details_of(exc):
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            yield message


def retry_delay_of(exc: grpc.aio.AioRpcError | grpc.RpcError) -> float | None:
    """The RetryInfo delay in seconds that a failed call carries, or None."""
    for info in _unpacked(exc, error_details_pb2.RetryInfo):
        return info.retry_delay.ToNanoseconds() / 1e9
    return None


def field_of(exc: grpc.aio.AioRpcError | grpc.RpcError) -> str | None:
    """The request field named by the first BadRequest violation a failed call carries, or None."""
    for bad in _unpacked(exc, error_details_pb2.BadRequest):
        for violation in bad.field_violations:
            if violation.field:
                return violation.field
    return None
