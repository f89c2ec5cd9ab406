"""gRPC status codes as Connect codes, unchanged, and gateway refusals and the gateway's own
checks of a request as Connect errors.

An upstream failure keeps its google.rpc details (BadRequest, RetryInfo): connectrpc sends them
as ``grpc-status-details-bin`` over grpc-web and as ``details`` in a Connect error body. A gateway
refusal with ``Retry-After`` (a rate limit or token budget) carries it as a RetryInfo.
"""

from __future__ import annotations

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from google.protobuf import duration_pb2
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
    details = [ErrorDetail(Any(type_url=d.type_url, value=d.value)) for d in details_of(exc)]
    return ConnectError(connect_code(exc.code()), public_message(exc.details() or exc.code().name),
                        details)


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
