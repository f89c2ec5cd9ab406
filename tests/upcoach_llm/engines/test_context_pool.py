"""ContextPool: one holder per item, a bounded line, and no item lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from upcoach_llm.common.errors import ResourceExhausted
from upcoach_llm.engines.context_pool import ContextPool


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


async def test_a_holder_that_waits_too_long_is_refused_with_a_retry_hint() -> None:
    pool = ContextPool(["a"], max_waiting=4, max_wait_s=0.05,
                       wait_limit_name="GENERATION_QUEUE_TIMEOUT_S")
    held = await pool.acquire()
    started = asyncio.get_running_loop().time()
    with pytest.raises(ResourceExhausted) as refused:
        await pool.acquire()
    assert 0.05 <= asyncio.get_running_loop().time() - started < 1
    assert refused.value.retry_after_s == 1.0
    assert "GENERATION_QUEUE_TIMEOUT_S" in refused.value.message
    assert pool.waiting == 0 and pool.busy == 1
    pool.release(held)
    assert await pool.acquire() == "a"
