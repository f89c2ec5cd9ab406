"""uvicorn's httptools protocol with the two timeouts it lacks: slow headers and a stalled body
(on top of http/overload.py's uncapped /livez).

A request's headers must be complete within ``header_timeout_s`` of the connection opening or
of the first byte of that request; a body being received must not go ``body_idle_timeout_s``
without a byte (time when uvicorn itself paused reading, or has not yet asked for the body of
an ``Expect: 100-continue`` request, does not count). Either way the connection is dropped,
with a 408 in the one error shape when no response has started. uvicorn's ``timeout_keep_alive``
still covers the idle gap between requests. One loop timer per connection at most; receiving
body bytes only records the time.
"""

from __future__ import annotations

import asyncio

from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.http.jsonbody import dumps
from upcoach_llm.gateway.http.overload import LivenessUncappedProtocol

log = get_logger(__name__)


def _timeout_response() -> bytes:
    body = dumps(APIError(408, "the request was not received in time",
                          error_type="timeout_error", code="request_timeout").body())
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))


TIMEOUT_RESPONSE = _timeout_response()


class TimedHttpToolsProtocol(LivenessUncappedProtocol):
    """Drops connections whose headers are slow or whose body stalls; see ``timed_protocol``."""

    header_timeout_s = 10.0
    body_idle_timeout_s = 30.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._timer: asyncio.TimerHandle | None = None
        self._reading_body = False
        self._last_body = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:
            self._arm(self.header_timeout_s, self._headers_late)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._reading_body = True
        self._last_body = self.loop.time()
        self._arm(self.body_idle_timeout_s, self._body_check)

    def on_body(self, body: bytes) -> None:
        self._last_body = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._reading_body = False
        self._disarm()
        super().handle_websocket_upgrade()

    def _arm(self, delay: float, callback: object) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)  # type: ignore[arg-type]

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_late(self) -> None:
        self._timer = None
        previous = self.cycle
        self._drop("headers", answer=previous is None or previous.response_complete)

    def _body_check(self) -> None:
        self._timer = None
        if not self._reading_body:
            return
        now = self.loop.time()
        cycle = self.cycle
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            self._last_body = now
        idle = now - self._last_body
        if idle < self.body_idle_timeout_s:
            self._arm(self.body_idle_timeout_s - idle, self._body_check)
            return
        answer = not cycle.response_started
        if answer:
            # The app may still be waiting for the body: it must not write after the 408.
            cycle.disconnected = True
            cycle.message_event.set()
        self._drop("body", answer=answer)

    def _drop(self, part: str, *, answer: bool) -> None:
        if self.transport.is_closing():
            return
        log.warning("request too slow, connection dropped", extra={"fields": {
            "part": part, "client": self.client[0] if self.client else None}})
        if answer:
            self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()


def timed_protocol(header_timeout_s: float, body_idle_timeout_s: float
                   ) -> type[TimedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, carrying the two timeouts."""
    return type("TimedHttpToolsProtocol", (TimedHttpToolsProtocol,),
                {"header_timeout_s": header_timeout_s,
                 "body_idle_timeout_s": body_idle_timeout_s})
