"""Coalesced streams: one piece per message when the reader keeps up, several under a burst, the
first at once, the last alone, errors after what came before, and the read-ahead stopped on
close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from upcoach_llm.common.coalesce import coalesced

END = None


def text_of(piece: str | None) -> str | None:
    return piece


async def pieces(texts: list[str], delay_s: float = 0.0, error: Exception | None = None,
                 ) -> AsyncIterator[str | None]:
    for text in texts:
        if delay_s:
            await asyncio.sleep(delay_s)
        yield text
    if error is not None:
        raise error
    yield END


async def collect(source: AsyncIterator[str | None], flush_s: float) -> list[str | None]:
    return [p async for p in coalesced(source, flush_s, text_of=text_of, joined="".join)]


async def test_a_burst_travels_in_few_messages_and_loses_nothing() -> None:
    texts = [f"t{i} " for i in range(50)]
    got = await collect(pieces(texts), 0.005)
    assert "".join(p for p in got if p) == "".join(texts)
    assert got[-1] is END and len(got) <= 4


async def test_a_reader_that_keeps_up_gets_one_piece_per_message() -> None:
    texts = [f"t{i} " for i in range(6)]
    got = await collect(pieces(texts, delay_s=0.03), 0.002)
    assert got == [*texts, END]


async def test_zero_flush_passes_every_piece_on() -> None:
    texts = [f"t{i} " for i in range(20)]
    assert await collect(pieces(texts), 0.0) == [*texts, END]


async def test_the_first_piece_is_not_held() -> None:
    # A held first piece would wait out the whole flush interval (2 s); one sent at once comes
    # in milliseconds, well under the bound even on a loaded machine. Closing ends the wait.
    async def slow_after_first() -> AsyncIterator[str | None]:
        yield "first"
        await asyncio.sleep(30)
        yield END

    loop = asyncio.get_running_loop()
    started = loop.time()
    stream = coalesced(slow_after_first(), 2.0, text_of=text_of, joined="".join)
    assert await anext(stream) == "first"
    assert loop.time() - started < 1.0
    await stream.aclose()


async def test_an_error_comes_after_the_pieces_sent_before_it() -> None:
    got: list[str | None] = []
    with pytest.raises(ValueError, match="upstream broke"):
        async for piece in coalesced(pieces(["a", "b"], error=ValueError("upstream broke")),
                                     0.005, text_of=text_of, joined="".join):
            got.append(piece)
    assert "".join(p for p in got if p) == "ab"


async def test_closing_the_stream_stops_the_read_ahead() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[str | None]:
        try:
            while True:
                await asyncio.sleep(0.001)
                yield "x"
        finally:
            closed.set()

    stream = coalesced(endless(), 0.005, text_of=text_of, joined="".join)
    assert (await anext(stream)).startswith("x")
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 10)
