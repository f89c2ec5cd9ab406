"""The error shape and the gRPC status → HTTP mapping."""

from __future__ import annotations

import grpc
import pytest

from gateway.errors import APIError, from_grpc, param_of


class FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(("code", "status"), [
    (grpc.StatusCode.INVALID_ARGUMENT, 400), (grpc.StatusCode.OUT_OF_RANGE, 400),
    (grpc.StatusCode.NOT_FOUND, 404), (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.UNAUTHENTICATED, 401), (grpc.StatusCode.INTERNAL, 500),
])
def test_status_of_grpc_code(code: grpc.StatusCode, status: int) -> None:
    assert from_grpc(FakeRpcError(code, "x")).status == status


def test_param_from_the_message_prefix_with_renames() -> None:
    error = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "coaching_context: 'x' is not one of general, habits"),
                      renames={"coaching_context": "context_type"})
    assert error.param == "context_type"
    assert error.message == "context_type: 'x' is not one of general, habits"
    sampling = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                      "sampling.max_tokens: must be positive, got -1"))
    assert sampling.param == "max_tokens"
    nested = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "messages[1].content: must not be empty"))
    assert nested.param == "messages[1].content"


def test_unknown_model_is_404_model_not_found() -> None:
    error = from_grpc(FakeRpcError(grpc.StatusCode.NOT_FOUND,
                                   "model 'gpt-9' is not in the catalog"))
    assert (error.status, error.param, error.code) == (404, "model", "model_not_found")


def test_shape() -> None:
    body = APIError(413, "too big", code="request_too_large").body()
    assert body == {"error": {"message": "too big", "type": "invalid_request_error",
                              "param": None, "code": "request_too_large"}}


def test_param_of_pydantic_locations() -> None:
    assert param_of(("body", "messages", 0, "role")) == "messages[0].role"
    assert param_of(("body", "max_tokens")) == "max_tokens"
    assert param_of(("body",)) is None
