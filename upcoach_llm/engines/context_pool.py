"""A fixed set of resources (llama contexts) lent to one holder at a time, with a bounded line.

Holders beyond the set wait in arrival order; when ``max_waiting`` already wait, the next one
gets ResourceExhausted at once instead of queueing without bound, and a holder that waited
``max_wait_s`` without getting an item gets ResourceExhausted too. Both carry a one-second
``retry_after_s``: a context frees up every few hundred milliseconds under load.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from upcoach_llm.common.errors import ResourceExhausted

T = TypeVar("T")


class ContextPool(Generic[T]):
    """Lends each item to one holder at a time; ``release`` hands it to the next in line."""

    def __init__(self, items: list[T], max_waiting: int, *, what: str = "context",
                 limit_name: str = "max_waiting", max_wait_s: float | None = None,
                 wait_limit_name: str = "max_wait_s") -> None:
        if not items:
            raise ValueError("a pool needs at least one item")
        self.items = tuple(items)
        self._free: deque[T] = deque(items)
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._max_waiting = max_waiting
        self._what = what
        self._limit_name = limit_name
        self._wait_limit_name = wait_limit_name
        self._max_wait_s = max_wait_s

    @property
    def free(self) -> int:
        """Items nobody holds right now."""
        return len(self._free)

    @property
    def waiting(self) -> int:
        """Holders waiting for an item."""
        return len(self._waiters)

    @property
    def busy(self) -> int:
        """Items held right now."""
        return len(self.items) - len(self._free)

    async def acquire(self) -> T:
        """Takes a free item, or waits in line for one; ResourceExhausted when the line is full."""
        if self._free and not self._waiters:
            return self._free.popleft()
        if len(self._waiters) >= self._max_waiting:
            raise self._exhausted(f"all {len(self.items)} {self._what}s are busy and "
                                  f"{len(self._waiters)} requests already wait "
                                  f"({self._limit_name}={self._max_waiting}); retry later")
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            if self._max_wait_s is None:
                return await waiter
            return await asyncio.wait_for(asyncio.shield(waiter), self._max_wait_s)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()
            waiter.cancel()
            self._waiters.remove(waiter)
            raise self._exhausted(f"no {self._what} became free within {self._max_wait_s:g}s "
                                  f"({self._wait_limit_name}); retry later") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            else:
                self._waiters.remove(waiter)
            raise

    @staticmethod
    def _exhausted(message: str) -> ResourceExhausted:
        return ResourceExhausted(message, retry_after_s=1.0)

    def release(self, item: T) -> None:
        """Gives the item back: to the first live waiter, else to the free set."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        self._free.append(item)
