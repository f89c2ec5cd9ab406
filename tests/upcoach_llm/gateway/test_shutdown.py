"""Graceful shutdown: a stream still running when the grace ends gets an error event and [DONE]
over SSE, UNAVAILABLE "server shutting down" over grpc-web."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType

from tests.upcoach_llm.gateway.conftest import RunningGateway
from tests.upcoach_llm.gateway.sse import parse
from upcoach_llm.api import common_pb2, router_connect, router_pb2

GRACE = 1.0
SLOW = {"messages": [{"role": "user", "content": "SLOW"}], "stream": True}


async def test_stream_open_at_the_end_of_the_grace_ends_with_an_error_event(gateway) -> None:
    gw: RunningGateway = await gateway({"GATEWAY_GRACE_S": str(GRACE)})
    async with gw.client() as client, client.stream("POST", "/v1/chat/completions",
                                                    json=SLOW) as reply:
        assert reply.status_code == 200
        chunks = reply.aiter_text()
        text = ""
        while "tick" not in text:
            text += await anext(chunks)
        gw.server.handle_exit(signal.SIGTERM, None)
        signalled = time.monotonic()
        at_signal = text.count("tick")
        async for chunk in chunks:
            text += chunk
        ended = time.monotonic() - signalled
    payloads, done = parse(text)
    assert done
    assert payloads[-1] == {"error": {"message": "server shutting down",
                                      "type": "service_unavailable_error", "param": None,
                                      "code": "server_shutdown"}}
    assert text.count("tick") > at_signal + 10
    # Ended near the grace's end, not at once; the upper bound leaves a loaded machine room,
    # and is still far below the 10 s the SLOW stream runs when nothing ends it.
    assert GRACE / 2 < ended < GRACE + 4
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)



async def test_grpc_web_stream_open_at_the_end_of_the_grace_ends_unavailable(gateway) -> None:
    gw: RunningGateway = await gateway({"GATEWAY_GRACE_SECONDS": str(GRACE)})
    client = router_connect.RouterServiceClient(gw.url, protocol=ProtocolType.GRPC_WEB)
    request = router_pb2.ChatStreamRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="SLOW")])
    ticks = 0
    with pytest.raises(ConnectError) as caught:
        async for message in client.chat_stream(request):
            ticks += bool(message.text)
            if ticks == 1:
                gw.server.handle_exit(signal.SIGTERM, None)
    assert (caught.value.code, caught.value.message) == (Code.UNAVAILABLE, "server shutting down")
    assert ticks > 10
    assert gw.deps.metrics.errors_total == 1
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)
