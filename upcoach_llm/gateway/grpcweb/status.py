"""gRPC status codes as Connect codes, unchanged, and gateway refusals and the gateway's own
checks of a request as Connect errors.

An upstream failure keeps its google.rpc details (BadRequest, RetryInfo): connectrpc sends them
as ``grpc-status-details-bin`` over grpc-web and as ``details`` in a Connect error body. Like the
message, a BadRequest's descriptions are what a caller outside the stack may read
(``public_message``: no backend addresses); a detail of any other type stays inside. A gateway
refusal with ``Retry-After`` (a rate limit or token budget) carries it as a RetryInfo.
"""

from __future__ import annotations

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2
from protobuf.wkt import Any

from upcoach_llm.api.status_details import details_of
from upcoach_llm.common.errors import ServiceError
from upcoach_llm.gateway.errors import APIError, public_message

_REFUSALS = {401: Code.UNAUTHENTICATED, 429: Code.RESOURCE_EXHAUSTED, 503: Code.UNAVAILABLE}
_TYPE_URL = "type.googleapis.com/"


def connect_code(code: grpc.StatusCode) -> Code:
    """The Connect code with the same meaning (grpc spells CANCELLED, Connect CANCELED)."""
    if code == grpc.StatusCode.CANCELLED:
        return Code.CANCELED
    return Code[code.name] if code.name in Code.__members__ else Code.UNKNOWN


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ConnectError:
    details = [ErrorDetail(Any(type_url=d.type_url, value=value))
               for d in details_of(exc) if (value := _public_detail(d)) is not None]
    return ConnectError(connect_code(exc.code()), public_message(exc.details() or exc.code().name),
                        details)


def _public_detail(detail: any_pb2.Any) -> bytes | None:
    """A detail's bytes as the caller may see them: a RetryInfo as it is, a BadRequest with its
    descriptions cleaned as the message is; None for any other type."""
    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
        return detail.value
    if not detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
        return None
    bad = error_details_pb2.BadRequest()
    detail.Unpack(bad)
    for violation in bad.field_violations:
        violation.description = public_message(violation.description)
    return bad.SerializeToString()


def from_refusal(error: APIError) -> ConnectError:
    details = []
    retry_after = error.headers.get("Retry-After")
    if retry_after is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(retry_after)))
        details.append(ErrorDetail(Any(type_url=_TYPE_URL + info.DESCRIPTOR.full_name,
                                       value=info.SerializeToString())))
    return ConnectError(_REFUSALS.get(error.status, Code.INTERNAL), error.message, details)


def from_service_error(error: ServiceError) -> ConnectError:
    """A check the gateway made itself, as the router would answer it: its code, and a
    BadRequest naming the field."""
    details = []
    if error.field:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field,
                                                        description=error.description)])
        details.append(ErrorDetail(Any(type_url=_TYPE_URL + bad.DESCRIPTOR.full_name,
                                       value=bad.SerializeToString())))
    return ConnectError(connect_code(error.code), error.message, details)
