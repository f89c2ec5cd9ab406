"""The real npm grpc-web client (@connectrpc/connect-web) against the gateway and the double."""

from __future__ import annotations

import base64

import pytest
from google.rpc import error_details_pb2

from tests.upcoach_llm.gateway import npm_client
from tests.upcoach_llm.gateway.conftest import RunningGateway


@pytest.fixture(scope="module", autouse=True)
def typescript_code() -> None:
    npm_client.generate_ts()


async def test_streamed_chat_arrives_in_several_messages(gateway) -> None:
    gw: RunningGateway = await gateway()
    run = await npm_client.chat_stream(gw.url, "build a morning routine", "--context", "habits")
    assert run.code == 0, run.stderr
    summary = run.last["summary"]
    assert summary["messages"] >= 5
    assert len([line for line in run.lines if line.get("text")]) >= 4
    assert summary["text"] == "echo: build a morning routine"
    assert summary["model"] == "smollm2-135m-instruct"
    assert summary["finishReason"] == 1
    assert gw.double.calls.chat[-1].coaching_context == "habits"


async def test_the_npm_client_sets_the_locale_field(gateway) -> None:
    gw: RunningGateway = await gateway()
    run = await npm_client.chat_stream(gw.url, "hi", "--locale", "es-MX")
    assert run.code == 0, run.stderr
    assert gw.double.calls.chat[-1].locale == "es-MX"


async def test_status_codes_reach_the_npm_client(gateway) -> None:
    gw: RunningGateway = await gateway({"LLM_API_KEY": "app-key"})
    refused = await npm_client.chat_stream(gw.url, "hi")
    unknown = await npm_client.chat_stream(gw.url, "hi", "--key", "app-key", "--model", "gpt-9")
    assert (refused.code, refused.last["error"]["code"]) == (3, "Unauthenticated")
    assert (unknown.code, unknown.last["error"]["code"]) == (3, "NotFound")
    assert "gpt-9" in unknown.last["error"]["message"]


async def test_the_failed_field_reaches_the_npm_client_as_a_bad_request(gateway) -> None:
    gw: RunningGateway = await gateway()
    run = await npm_client.chat_stream(gw.url, "hi", "--context", "taxes")
    assert (run.code, run.last["error"]["code"]) == (3, "InvalidArgument"), run.stderr
    [detail] = run.last["error"]["details"]
    assert detail["type"] == "google.rpc.BadRequest"
    request = error_details_pb2.BadRequest.FromString(base64.b64decode(detail["value"]))
    assert request.field_violations[0].field == "coaching_context"
