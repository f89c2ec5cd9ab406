"""ContextPool: one holder per item, a bounded line, and no item lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import ResourceExhausted
from services.engines.context_pool import ContextPool


async def test_waiters_are_served_in_order_as_items_come_back() -> None:
    pool = ContextPool(["a"], max_waiting=2)
    first = await pool.acquire()
    second = asyncio.create_task(pool.acquire())
    third = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    assert pool.waiting == 2 and not second.done()
    pool.release(first)
    assert await second == "a"
    assert not third.done()
    pool.release("a")
    assert await third == "a"
    pool.release("a")
    assert pool.free == 1 and pool.waiting == 0


async def test_a_full_line_is_resource_exhausted() -> None:
    pool = ContextPool(["a"], max_waiting=1, what="llama context",
                       limit_name="GENERATION_MAX_QUEUE")
    await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted, match="GENERATION_MAX_QUEUE=1"):
        await pool.acquire()
    waiter.cancel()


async def test_a_cancelled_waiter_leaves_the_line_and_loses_nothing() -> None:
    pool = ContextPool(["a"], max_waiting=1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.waiting == 0
    pool.release(held)
    assert pool.free == 1


async def test_an_item_handed_to_a_waiter_cancelled_before_it_ran_goes_back() -> None:
    pool = ContextPool(["a"], max_waiting=1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    pool.release(held)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.free == 1
