"""Coalesced token streams: fewer, fuller messages when tokens come faster than they are sent.

``coalesced`` reads its source ahead on a task of its own and hands out what accumulated. The
first piece goes out at once. After it, a message goes out at most every ``flush_s``
(STREAM_FLUSH_MS): a piece that arrives sooner than that after the last message waits out the
rest of the interval, and whatever arrived meanwhile goes with it; a piece that arrives later
goes at once. So a steady stream of tokens further apart than ``flush_s`` passes one by one with
no added wait, a burst travels in a few messages, and ``flush_s=0`` passes every piece on as it
is. Only text pieces merge (``joined`` builds one piece of a run, keeping whatever else they
carry, such as log probabilities, in order); any other piece (the last one, with the finish
reason) is passed on as it is, after the text before it. An error of the source comes after
the pieces it sent; closing the stream, or the end of the call it serves (``on_done``), stops
the read-ahead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, nullcontext
from typing import TypeVar

P = TypeVar("P")


async def coalesced(source: AsyncIterator[P], flush_s: float, *,
                    text_of: Callable[[P], str | None], joined: Callable[[list[P]], P],
                    on_done: Callable[[Callable[[object], None]], None] | None = None,
                    ) -> AsyncIterator[P]:
    """The source's pieces with runs of text pieces joined. ``text_of`` gives a piece's text, or
    None for a piece that must stay alone; ``joined`` builds one text piece of a run of them.
    ``on_done`` registers a callback for the end of the call being served (a gRPC context's
    ``add_done_callback``): grpc stops iterating a cancelled call's stream without closing it,
    and the read-ahead must not outlive the call."""
    if flush_s <= 0:
        async for piece in source:
            yield piece
        return
    waiting: deque[P] = deque()
    arrived = asyncio.Event()
    ended: list[BaseException | None] = []

    async def read_ahead() -> None:
        try:
            async with aclosing(source) if hasattr(source, "aclose") else nullcontext():
                async for piece in source:
                    waiting.append(piece)
                    arrived.set()
        except Exception as exc:  # noqa: BLE001 - handed to the reader, after what came before
            ended.append(exc)
        else:
            ended.append(None)
        arrived.set()

    reader = asyncio.create_task(read_ahead())
    if on_done is not None:
        on_done(lambda _: reader.cancel())
    loop = asyncio.get_running_loop()
    last_sent: float | None = None
    try:
        while True:
            if not waiting:
                if ended:
                    break
                arrived.clear()
                await arrived.wait()
                if last_sent is not None and not ended:
                    hold = last_sent + flush_s - loop.time()
                    if hold > 0:
                        await asyncio.sleep(hold)  # the pieces right behind it join it
                continue
            run: list[P] = []
            while waiting and text_of(waiting[0]) is not None:
                run.append(waiting.popleft())
            last_sent = loop.time()
            if len(run) == 1:
                yield run[0]
            elif run:
                yield joined(run)
            else:
                yield waiting.popleft()
        if ended[0] is not None:
            raise ended[0]
    finally:
        if not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

