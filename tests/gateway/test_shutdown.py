"""Graceful shutdown: a stream still running when the grace ends gets an error event and [DONE]."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.gateway.conftest import RunningGateway
from tests.gateway.sse import parse

GRACE = 1.0
SLOW = {"messages": [{"role": "user", "content": "SLOW"}], "stream": True}


async def test_stream_open_at_the_end_of_the_grace_ends_with_an_error_event(gateway) -> None:
    gw: RunningGateway = await gateway({"GATEWAY_GRACE_SECONDS": str(GRACE)})
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
    assert GRACE / 2 < ended < GRACE + 1
    await asyncio.wait_for(gw.double.calls.cancelled.wait(), 5)

