"""The live chat stream relays, so a graceful shutdown ends them with an error instead of a cut.

Each relayed ChatStream (upcoach_llm.gateway.relay: REST SSE and grpc-web) registers its upstream
gRPC call.
When the drain's grace is about to run out, the server calls ``expire()``: every registered call
(and any registered later) is cancelled, its relay sees the read end with
``asyncio.CancelledError`` and asks ``cut_by_shutdown()`` whether that is why, then ends its
stream with ``error()`` (an SSE error event before ``[DONE]``, or UNAVAILABLE over grpc-web).
"""

from __future__ import annotations

import asyncio

import grpc

from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.errors import APIError

log = get_logger(__name__)


class StreamRegistry:
    """The upstream calls of the chat streams still being relayed."""

    def __init__(self) -> None:
        self._calls: set[grpc.aio.Call] = set()
        self.expired = False

    def add(self, call: grpc.aio.Call) -> None:
        self._calls.add(call)
        if self.expired:
            call.cancel()

    def discard(self, call: grpc.aio.Call) -> None:
        self._calls.discard(call)

    def __len__(self) -> int:
        return len(self._calls)

    def expire(self) -> None:
        """The grace is ending: cancel every live relay's upstream call."""
        self.expired = True
        if self._calls:
            log.warning("ending live streams for shutdown",
                        extra={"fields": {"streams": len(self._calls)}})
        for call in list(self._calls):
            call.cancel()

    def cut_by_shutdown(self, call: grpc.aio.Call) -> bool:
        """Whether the CancelledError a relay just caught is the shutdown cancelling its call,
        rather than its own task being cancelled (the client went away, or the server's end)."""
        task = asyncio.current_task()
        return (self.expired and call.cancelled()
                and (task is None or task.cancelling() == 0))

    @staticmethod
    def error() -> APIError:
        return APIError(503, "server shutting down", error_type="service_unavailable_error",
                        code="server_shutdown")
