"""A LiveStream stand-in for the renderers' tests: the messages it is given, then maybe a bug."""

from __future__ import annotations

from collections.abc import AsyncIterator

from upcoach_llm.api import router_pb2


class ScriptedStream:
    """Yields ``messages``, then raises ``error`` if any (a bug, not a StreamFailed)."""

    def __init__(self, messages: list[router_pb2.ChatStreamResponse],
                 error: Exception | None = None) -> None:
        self.model = "m"
        self._messages = messages
        self._error = error
        self.closed = False

    async def messages(self) -> AsyncIterator[router_pb2.ChatStreamResponse]:
        for message in self._messages:
            yield message
        if self._error is not None:
            raise self._error

    def done(self) -> None:
        self.closed = True
