"""The detector's mechanics on chosen vectors: nearest exemplar against the benign margin, risk
built across turns, patterns first, and the cache that embeds each message once."""

from __future__ import annotations

import asyncio

import pytest

from tests.upcoach_llm.router.safety.fakes import FakeEngine, config, unit
from upcoach_llm.router.safety.detector import HEAVY_CHARS, SafetyDetector

CLOSE = unit(0.8, 0.2, 0.3, 0)  # 0.8 from RISK, far from BENIGN: flagged
AMBIGUOUS = unit(0.7, 0.68, 0, 0)  # close to RISK, as close to BENIGN: not flagged
HALF_A = unit(0.55, 0, 0.835, 0)  # 0.55 from RISK alone; with HALF_B, the mean is RISK itself
HALF_B = unit(0.55, 0, -0.835, 0)


async def _detector(**overrides: object) -> tuple[SafetyDetector, FakeEngine]:
    engine = FakeEngine({"close": CLOSE, "ambiguous": AMBIGUOUS, "half a": HALF_A,
                         "half b": HALF_B})
    detector = SafetyDetector(config(**overrides), engine)
    await detector.load()
    return detector, engine


async def test_a_sentence_near_a_risk_exemplar_and_past_the_benign_margin_is_flagged() -> None:
    detector, _ = await _detector()
    verdict = await detector.check(["hello there friend", "close"])
    assert verdict is not None
    assert (verdict.category, verdict.rule, verdict.message) == ("self_harm", "exemplar", 1)
    assert verdict.score == pytest.approx(0.8 / (0.8**2 + 0.2**2 + 0.3**2) ** 0.5)
    assert await detector.check(["ambiguous"]) is None


async def test_risk_built_across_turns_is_flagged_by_the_window() -> None:
    detector, _ = await _detector()
    assert await detector.check(["half a"]) is None
    assert await detector.check(["half b"]) is None
    verdict = await detector.check(["half a", "half b"])
    assert verdict is not None and (verdict.rule, verdict.message) == ("conversation", 1)
    assert verdict.score == pytest.approx(1.0)


async def test_a_pattern_wins_and_idioms_are_blanked_first() -> None:
    detector, _ = await _detector()
    verdict = await detector.check(["close", "some days I want to kill myself"])
    assert (verdict.rule, verdict.message) == ("pattern self_harm[0]", 1)
    laughing = "that joke, I'll kill myself laughing"
    assert (await detector.check([laughing])).rule == "pattern self_harm[0]"  # no such idiom
    idiomatic, _ = await _detector(idioms=[r"\bkill myself laughing\b"])
    assert await idiomatic.check([laughing]) is None


async def test_each_message_is_embedded_once_and_the_cache_is_bounded() -> None:
    detector, engine = await _detector(cache_size=12)
    turns = [f"turn number {i}" for i in range(10)]
    await detector.check(turns)
    assert engine.calls[-1] == turns
    calls = len(engine.calls)
    await detector.check([*turns, "one more turn"])
    assert engine.calls[calls:] == [["one more turn"]]
    await detector.check([*turns, "one more turn"])
    assert len(engine.calls) == calls + 1
    await detector.check([f"other turn {i}" for i in range(12)])
    assert len(detector._cache) == 12


async def test_only_the_most_recent_messages_are_read() -> None:
    detector, engine = await _detector(max_user_messages=3)
    verdict = await detector.check(["close", "a", "b", "c"])
    assert verdict is None
    assert engine.calls[-1] == ["a", "b", "c"]
    verdict = await detector.check(["a", "b", "c", "close"])
    assert verdict.message == 3


async def test_heavy_checks_take_the_engine_one_at_a_time_and_light_ones_pass_them() -> None:
    """A check with more than HEAVY_CHARS of new text runs beside at most one other heavy one,
    so a short turn's sentences never queue behind many; a light check is not held by them."""
    running: list[int] = []
    most = 0

    class Slow(FakeEngine):
        async def embed(self, model: str, texts: list[str]):
            nonlocal most
            heavy = sum(map(len, texts)) > HEAVY_CHARS
            running.append(heavy)
            most = max(most, sum(running))
            try:
                await asyncio.sleep(0.2 if heavy else 0)
                return await super().embed(model, texts)
            finally:
                running.remove(heavy)

    detector = SafetyDetector(config(), Slow({}))
    await detector.load()
    long = "I keep a careful training log every single day. " * (HEAVY_CHARS // 40)
    heavy = [asyncio.create_task(detector.check([f"{long} ({n})"])) for n in range(3)]
    await asyncio.sleep(0.05)
    assert await detector.check(["a short turn about my morning run"]) is None
    assert sum(task.done() for task in heavy) < 2  # the light check did not wait for them
    assert await asyncio.gather(*heavy) == [None, None, None]
    assert most == 1
