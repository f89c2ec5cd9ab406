"""The status details of upcoach.llm.v1 errors: what a caller acts on, as data, not text.

A server attaches them with ``status_metadata``: a ``google.rpc.RetryInfo`` when the caller
should try again later (a full queue, a draining server) and a ``google.rpc.BadRequest`` with one
field violation when one request field failed. Callers read them with ``retry_delay_of`` and
``field_of``; ``details_of`` gives the raw details (the gateway passes RetryInfo and BadRequest on
to grpc-web, the latter's descriptions without backend addresses). Shared
by the server and the client distribution (copied next to the stubs when each is built).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


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
