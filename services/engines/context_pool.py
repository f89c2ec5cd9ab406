"""A fixed set of resources (llama contexts) lent to one holder at a time, with a bounded line.

Holders beyond the set wait in arrival order; when ``max_waiting`` already wait, the next one
gets ResourceExhausted at once instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from services.common.errors import ResourceExhausted

T = TypeVar("T")


class ContextPool(Generic[T]):
    """Lends each item to one holder at a time; ``release`` hands it to the next in line."""

    def __init__(self, items: list[T], max_waiting: int, *, what: str = "context",
                 limit_name: str = "max_waiting") -> None:
        if not items:
            raise ValueError("a pool needs at least one item")
        self.items = tuple(items)
        self._free: deque[T] = deque(items)
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._max_waiting = max_waiting
        self._what = what
        self._limit_name = limit_name

    @property
    def free(self) -> int:
        """Items nobody holds right now."""
        return len(self._free)

    @property
    def waiting(self) -> int:
        """Holders waiting for an item."""
        return len(self._waiters)

    async def acquire(self) -> T:
        """Takes a free item, or waits in line for one; ResourceExhausted when the line is full."""
        if self._free and not self._waiters:
            return self._free.popleft()
        if len(self._waiters) >= self._max_waiting:
            raise ResourceExhausted(
                f"all {len(self.items)} {self._what}s are busy and {len(self._waiters)} requests "
                f"already wait ({self._limit_name}={self._max_waiting}); retry later")
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            else:
                self._waiters.remove(waiter)
            raise

    def release(self, item: T) -> None:
        """Gives the item back: to the first live waiter, else to the free set."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        self._free.append(item)
