"""gateway/health/readiness.py ``Shared``: one run of a check for every caller in its window."""

from __future__ import annotations

import asyncio
import time

import pytest

from upcoach_llm.gateway.health.readiness import Shared


async def test_callers_share_one_run_and_its_result_for_the_ttl() -> None:
    runs = []

    async def check() -> int:
        runs.append(1)
        await asyncio.sleep(0.05)
        return len(runs)

    shared = Shared(check, ttl_s=0.3)
    assert await asyncio.gather(*(shared.get() for _ in range(5))) == [1] * 5
    assert await shared.get() == 1
    await asyncio.sleep(0.3)
    assert await shared.get() == 2


async def test_a_failing_run_fails_its_waiters_together_and_is_not_kept() -> None:
    runs = []

    async def check() -> int:
        runs.append(1)
        await asyncio.sleep(0.2)
        if len(runs) == 1:
            raise RuntimeError("router went away")
        return 7

    shared = Shared(check)
    started = time.monotonic()
    results = await asyncio.gather(*(shared.get() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(runs) == 1 and time.monotonic() - started < 1.0  # not one run per waiter
    assert await shared.get() == 7  # the failure was not cached


async def test_a_caller_that_goes_away_does_not_cancel_the_others_run() -> None:
    async def check() -> str:
        await asyncio.sleep(0.1)
        return "ready"

    shared = Shared(check)
    leaving = asyncio.create_task(shared.get())
    staying = asyncio.create_task(shared.get())
    await asyncio.sleep(0.02)
    leaving.cancel()
    assert await staying == "ready"
    with pytest.raises(asyncio.CancelledError):
        await leaving
