"""The crisis detector of config/safety.yaml on the packaged MiniLM, loaded once for the
package's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from upcoach_llm.router.safety.config import load_safety
from upcoach_llm.router.safety.detector import SafetyDetector
from upcoach_llm.router.safety.embeddings import packaged_engine


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the detector's calls (its engine is used from one loop)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def detector(loop: asyncio.AbstractEventLoop) -> Iterator[SafetyDetector]:
    detector = SafetyDetector(load_safety(), packaged_engine())
    loop.run_until_complete(detector.load())
    yield detector
    loop.run_until_complete(detector.close())

