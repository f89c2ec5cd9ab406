"""The error shape, the gRPC status → HTTP mapping, and what of a service's message leaves the
stack."""

from __future__ import annotations

import grpc
import pytest

from upcoach_llm.api.status_details import status_metadata
from upcoach_llm.gateway.errors import APIError, from_grpc, param_of, public_message
from upcoach_llm.gateway.fields import CHAT, MODELS


class FakeRpcError(grpc.aio.AioRpcError):
    """A failed call with the status details a service sends."""

    def __init__(self, code: grpc.StatusCode, details: str, *, field: str | None = None,
                 retry_after_s: float | None = None) -> None:
        trailing = status_metadata(code, details, retry_after_s, field=field, description=details)
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


@pytest.mark.parametrize(("code", "status"), [
    (grpc.StatusCode.INVALID_ARGUMENT, 400), (grpc.StatusCode.OUT_OF_RANGE, 400),
    (grpc.StatusCode.NOT_FOUND, 404), (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.UNAUTHENTICATED, 401), (grpc.StatusCode.INTERNAL, 500),
    (grpc.StatusCode.PERMISSION_DENIED, 403), (grpc.StatusCode.UNIMPLEMENTED, 501),
    (grpc.StatusCode.CANCELLED, 499), (grpc.StatusCode.FAILED_PRECONDITION, 400),
])
def test_status_of_grpc_code(code: grpc.StatusCode, status: int) -> None:
    assert from_grpc(FakeRpcError(code, "x")).status == status


def test_param_is_the_rest_name_of_the_bad_request_field() -> None:
    context = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                     "coaching_context: 'x' is not one of general, habits",
                                     field="coaching_context"), CHAT)
    assert context.param == "context_type"
    assert context.message == "context_type: 'x' is not one of general, habits"
    sampling = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                      "sampling.max_tokens: must be positive, got -1",
                                      field="sampling.max_tokens"), CHAT)
    assert (sampling.param, sampling.message) == ("max_tokens",
                                                  "max_tokens: must be positive, got -1")
    nested = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "messages[1].content: must not be empty",
                                    field="messages[1].content"), CHAT)
    assert nested.param == "messages[1].content"


def test_param_comes_from_the_details_never_from_the_text() -> None:
    unrelated = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                       "this model cannot sample with that nucleus",
                                       field="sampling.top_p"), CHAT)
    assert (unrelated.param, unrelated.message) == (
        "top_p", "this model cannot sample with that nucleus")
    text_only = from_grpc(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT,
                                       "messages[1].content: must not be empty"), CHAT)
    assert text_only.param is None


def test_unknown_model_is_404_model_not_found() -> None:
    error = from_grpc(FakeRpcError(grpc.StatusCode.NOT_FOUND,
                                   "model: 'gpt-9' is not in the catalog", field="model"))
    assert (error.status, error.param, error.code) == (404, "model", "model_not_found")
    by_name = from_grpc(FakeRpcError(grpc.StatusCode.NOT_FOUND,
                                     "name: 'gpt-9' is not in the catalog", field="name"), MODELS)
    assert (by_name.param, by_name.code) == ("model", "model_not_found")
    assert by_name.message == "model: 'gpt-9' is not in the catalog"


def test_a_busy_upstream_gives_retry_after_from_the_retry_info() -> None:
    error = from_grpc(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", retry_after_s=2.5))
    assert (error.status, error.code, error.headers["Retry-After"]) == (429, "server_busy", "3")


def test_internal_addresses_stay_inside_the_stack() -> None:
    text = ("every backend for mistral failed: ollama: backend ollama (ollama at "
            "http://10.0.0.5:11434) is unreachable: Multiple exceptions: [Errno 111] Connect call "
            "failed ('10.0.0.5', 11434), [Errno 111] Connect call failed ('::1', 11434, 0, 0); "
            "vllm: backend vllm (openai at https://vllm.internal:8000/v1) answered HTTP 503: busy")
    public = public_message(text)
    assert public == ("every backend for mistral failed: ollama: backend ollama (ollama) is "
                      "unreachable: Multiple exceptions: [Errno 111] Connect call failed, "
                      "[Errno 111] Connect call failed; vllm: backend vllm (openai) answered "
                      "HTTP 503: busy")
    error = from_grpc(FakeRpcError(grpc.StatusCode.UNAVAILABLE, text))
    assert "10.0.0.5" not in error.message and "vllm.internal" not in error.message
    assert public_message("messages[0].content: must not be empty (at most 3)") == (
        "messages[0].content: must not be empty (at most 3)")


def test_shape() -> None:
    body = APIError(413, "too big", code="request_too_large").body()
    assert body == {"error": {"message": "too big", "type": "invalid_request_error",
                              "param": None, "code": "request_too_large"}}


def test_param_of_pydantic_locations() -> None:
    assert param_of(("body", "messages", 0, "role")) == "messages[0].role"
    assert param_of(("body", "max_tokens")) == "max_tokens"
    assert param_of(("body",)) is None
