"""Rich gRPC errors: the failed field and the retry delay travel as google.rpc details.

A real in-process server runs the real chat validation; the caller reads the field from the
status details (``field_of``), never from the message, and a service in front passes the
details of its upstream's failure through unchanged.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from upcoach_llm.api import common_pb2, router_pb2, router_pb2_grpc
from upcoach_llm.api.status_details import (
    details_of,
    field_of,
    retry_delay_of,
    status_metadata,
)
from upcoach_llm.common import errors
from upcoach_llm.common.chat import SamplingDefaults, messages_from_proto, sampling_from_proto
from upcoach_llm.common.errors import InvalidArgument
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.server import GrpcService, RunningServer, open_server

OPEN = InternalAuth.disabled()
USER = common_pb2.ROLE_USER


class Validating(router_pb2_grpc.RouterServiceServicer):
    """Chat validates as the real services do; Route calls the upstream when there is one."""

    def __init__(self, upstream: str = "") -> None:
        self.upstream = upstream

    async def Chat(self, request, context):
        if self.upstream:
            async with grpc.aio.insecure_channel(self.upstream) as channel:
                return await router_pb2_grpc.RouterServiceStub(channel).Chat(request)
        messages_from_proto(request.messages)
        sampling_from_proto(request.sampling, SamplingDefaults())
        raise errors.ResourceExhausted("every backend is busy", retry_after_s=1.5)


class Service(GrpcService):
    def __init__(self, upstream: str = "") -> None:
        self.servicer = Validating(upstream)

    def service_names(self) -> list[str]:
        return [router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServiceServicer_to_server(self.servicer, server)


async def serving(upstream: str = "") -> RunningServer:
    running = await open_server(Service(upstream), "127.0.0.1", 0, auth=OPEN)
    await running.mark_serving()
    return running


async def failed_chat(port: int, request: router_pb2.ChatRequest) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router_pb2_grpc.RouterServiceStub(channel).Chat(request)
    return caught.value


def messages(*contents: str) -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=USER, content=c) for c in contents]


def violations(exc: grpc.aio.AioRpcError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    found = []
    for detail in details_of(exc):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found.extend(request.field_violations)
    return found


@pytest.mark.parametrize(("request_", "field"), [
    (router_pb2.ChatRequest(messages=messages("hi", " ")), "messages[1].content"),
    (router_pb2.ChatRequest(), "messages"),
    (router_pb2.ChatRequest(messages=messages("hi"), sampling=common_pb2.SamplingParams(
        top_p=0.0)), "sampling.top_p"),
    (router_pb2.ChatRequest(messages=messages("hi"), sampling=common_pb2.SamplingParams(
        stop=["ok", ""])), "sampling.stop[1]"),
])
async def test_a_bad_field_arrives_as_a_bad_request(request_: router_pb2.ChatRequest,
                                                    field: str) -> None:
    running = await serving()
    failed = await failed_chat(running.port, request_)
    await running.server.stop(0.1)
    assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(failed) == field
    [violation] = violations(failed)
    assert violation.field == field
    assert failed.details() == f"{field}: {violation.description}"
    assert retry_delay_of(failed) is None


async def test_the_details_pass_through_a_service_in_front() -> None:
    upstream = await serving()
    front = await serving(f"127.0.0.1:{upstream.port}")
    bad = await failed_chat(front.port, router_pb2.ChatRequest(messages=messages("hi", "")))
    busy = await failed_chat(front.port, router_pb2.ChatRequest(messages=messages("hi")))
    await front.server.stop(0.1)
    await upstream.server.stop(0.1)
    assert (bad.code(), field_of(bad)) == (grpc.StatusCode.INVALID_ARGUMENT,
                                           "messages[1].content")
    assert (busy.code(), retry_delay_of(busy), field_of(busy)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, 1.5, None)


def test_the_message_names_the_field_and_the_field_is_data() -> None:
    error = InvalidArgument("must not be empty", field="messages[1].content")
    assert error.message == str(error) == "messages[1].content: must not be empty"
    assert (error.field, error.description) == ("messages[1].content", "must not be empty")
    assert InvalidArgument("request: unreadable").field is None


def test_one_status_holds_retry_info_and_bad_request() -> None:
    code = grpc.StatusCode.UNAVAILABLE
    trailing = status_metadata(code, "backend: 'b' is draining", 0.0, field="backend",
                               description="'b' is draining")
    failed = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing),
                                  "backend: 'b' is draining")
    assert (retry_delay_of(failed), field_of(failed)) == (0.0, "backend")
    assert status_metadata(code, "plain") == ()
