"""The detector's mechanics on chosen vectors: nearest exemplar against the benign margin, risk
built across turns, patterns first, and the cache that embeds each message once."""

from __future__ import annotations

import pytest

from tests.upcoach_llm.router.safety.fakes import FakeEngine, config, unit
from upcoach_llm.router.safety.detector import SafetyDetector

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
    assert await detector.check(["this is killing me myself"]) is None


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
