"""gateway/grpcweb/status.py: upstream failures as Connect errors, readable outside the stack."""

from __future__ import annotations

import grpc
from connectrpc.errors import ConnectError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from upcoach_llm.api.status_details import status_metadata
from upcoach_llm.gateway.grpcweb.status import from_rpc_error

LEAKY = ("backend ollama (ollama at http://10.1.2.3:11434) (Ollama) does not return log "
         "probabilities")


def failed(code: grpc.StatusCode, message: str, trailing: tuple) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), message)


def unpacked(error: ConnectError, kind: type) -> list:
    """A ConnectError's details of one type."""
    found = []
    for detail in error.details:
        if detail.type_name == kind.DESCRIPTOR.full_name:
            found.append(kind.FromString(detail.message_bytes))
    return found


def test_bad_request_descriptions_lose_backend_addresses_as_the_message_does() -> None:
    code = grpc.StatusCode.INVALID_ARGUMENT
    trailing = status_metadata(code, f"sampling.logprobs: {LEAKY}", field="sampling.logprobs",
                               description=LEAKY)
    error = from_rpc_error(failed(code, f"sampling.logprobs: {LEAKY}", trailing))
    [bad] = unpacked(error, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "sampling.logprobs"
    assert bad.field_violations[0].description == (
        "backend ollama (ollama) (Ollama) does not return log probabilities")
    assert "10.1.2.3" not in error.message


def test_retry_info_passes_and_other_detail_types_stay_inside() -> None:
    code = grpc.StatusCode.UNAVAILABLE
    status = status_pb2.Status(code=code.value[0], message="draining")
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": 2}))
    status.details.add().Pack(error_details_pb2.DebugInfo(detail="Traceback: /srv/app.py"))
    error = from_rpc_error(failed(code, "draining",
                                  tuple(rpc_status.to_status(status).trailing_metadata)))
    assert [d.type_name for d in error.details] == ["google.rpc.RetryInfo"]
    assert unpacked(error, error_details_pb2.RetryInfo)[0].retry_delay.seconds == 2
