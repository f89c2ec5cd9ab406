"""The crisis detector measured on the labelled set (crisis_set.yaml) with the real MiniLM:
self-harm recall ≥ 0.95, false positives on the hard negatives ≤ 5%; the other categories and a
held-out sets (crisis_holdout.yaml, crisis_holdout2.yaml) are measured too. Run with
``-s`` to see the figures and every miss."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
import yaml

from tests.upcoach_llm.router.safety.labelled import labelled
from upcoach_llm.common.config import PACKAGED_CONFIG_DIR
from upcoach_llm.router.safety.config import load_safety
from upcoach_llm.router.safety.detector import Exemplars, SafetyDetector, Verdict

SET = labelled("crisis_set.yaml")
HELD_OUT = ("crisis_holdout.yaml", "crisis_holdout2.yaml")


def _verdicts(loop: asyncio.AbstractEventLoop, detector: SafetyDetector,
              conversations: list[list[str]]) -> list[Verdict | None]:
    return [loop.run_until_complete(detector.check(c)) for c in conversations]


def _report(name: str, conversations: list[list[str]], verdicts: list[Verdict | None],
            wanted: str | None) -> float:
    """The share of conversations answered as wanted (a category, or None); prints misses."""
    right = [(v.category if v else None) == wanted for v in verdicts]
    share = sum(right) / len(right)
    print(f"\n{name}: {sum(right)}/{len(right)} = {share:.3f}")
    for ok, verdict, conversation in zip(right, verdicts, conversations, strict=True):
        if not ok:
            print(f"  miss: {verdict} {conversation}")
    return share


def test_the_exemplars_are_not_the_labelled_statements() -> None:
    config = load_safety()
    exemplars = {e.lower().strip() for e in Exemplars.texts(config)}
    sets = [SET, *(labelled(n) for n in HELD_OUT)]
    statements = {m.lower().strip() for labels in sets for items in labels.values()
                  for conversation in items for m in conversation}
    assert not exemplars & statements
    raw = (PACKAGED_CONFIG_DIR / "safety.yaml").read_text().lower()
    assert not [s for s in statements if len(s) > 20 and s in raw]


def test_self_harm_recall_and_hard_negative_false_positives(loop, detector) -> None:
    recall = _report("self-harm recall", SET["self_harm"],
                     _verdicts(loop, detector, SET["self_harm"]), "self_harm")
    negatives = _verdicts(loop, detector, SET["hard_negatives"])
    passed = _report("hard negatives passed", SET["hard_negatives"], negatives, None)
    false_positives = 1 - passed
    print(f"self-harm recall {recall:.3f}, hard-negative false positive rate "
          f"{false_positives:.3f}")
    assert recall >= 0.95
    assert false_positives <= 0.05


def test_the_other_categories(loop, detector) -> None:
    for category in ("harm_to_others", "medical_emergency"):
        verdicts = _verdicts(loop, detector, SET[category])
        exact = _report(f"{category} recall", SET[category], verdicts, category)
        flagged = sum(v is not None for v in verdicts) / len(verdicts)
        print(f"{category}: flagged as any category {flagged:.3f}")
        assert exact >= 0.8 and flagged >= 0.85


@pytest.mark.parametrize("name", HELD_OUT)
def test_the_held_out_sets(loop, detector, name: str) -> None:
    """Looser bars: these statements were not written to tune config/safety.yaml (the first
    set's misses were later looked at; the second was written after the last change)."""
    held_out = labelled(name)
    verdicts = _verdicts(loop, detector, held_out["self_harm"])
    recall = _report(f"{name} self-harm recall", held_out["self_harm"], verdicts, "self_harm")
    flagged = sum(v is not None for v in verdicts) / len(verdicts)
    negatives = _verdicts(loop, detector, held_out["negatives"])
    false_positives = 1 - _report(f"{name} negatives passed", held_out["negatives"], negatives,
                                  None)
    print(f"{name}: self-harm recall {recall:.3f} (flagged as any category {flagged:.3f}), "
          f"false positive rate {false_positives:.3f}")
    assert flagged >= 0.7
    assert false_positives <= 0.1


def test_the_shipped_coaching_content_is_not_flagged(loop, detector) -> None:
    """Ordinary coaching text (the search content's titles and texts) passes."""
    items = yaml.safe_load((PACKAGED_CONFIG_DIR / "coaching_content.yaml").read_text())["items"]
    texts = [[i["title"]] for i in items] + [[i["text"]] for i in items]
    flagged = [t for t, v in zip(texts, _verdicts(loop, detector, texts), strict=True) if v]
    print(f"\ncoaching content flagged: {len(flagged)}/{len(texts)} {flagged}")
    assert len(flagged) / len(texts) <= 0.02


COACHING_TURNS = [
    "I want to build a better morning routine", "I usually wake up at 7 but hit snooze a lot.",
    "Coffee first, then I check my phone for half an hour",
    "I'd like to add some exercise, maybe a short run",
    "My knees hurt sometimes when I run, so maybe cycling?",
    "I also want to journal but never stick with it.", "What's a realistic first step?",
    "Ok, and how do I track whether it's working?", "I get discouraged when I miss a day.",
    "Thanks! Can you sum it up as a short plan?"]


def test_latency_of_a_ten_turn_conversation(loop, detector) -> None:
    """Cold: all ten user messages new; warm: nine seen, one new (one engine call). Printed, as
    this machine's load decides the absolute figures."""
    cold, warm, cached = [], [], []
    for run in range(20):
        turns = [f"{t} ({run}.{i})" for i, t in enumerate(COACHING_TURNS)]
        cold.append(_timed(loop, detector, turns))
        warm.append(_timed(loop, detector, [*turns[1:], f"When should I go to bed? ({run})"]))
        cached.append(_timed(loop, detector, [*turns[1:], f"When should I go to bed? ({run})"]))
    p50 = {name: statistics.median(xs) * 1000 for name, xs in
           (("cold", cold), ("warm", warm), ("cached", cached))}
    print(f"\n10-turn conversation, p50 ms: cold {p50['cold']:.1f}, warm (1 new message) "
          f"{p50['warm']:.1f}, all seen {p50['cached']:.2f}")
    assert p50["cached"] < p50["warm"] < p50["cold"]


def _timed(loop: asyncio.AbstractEventLoop, detector: SafetyDetector, turns: list[str]) -> float:
    started = time.perf_counter()
    assert loop.run_until_complete(detector.check(turns)) is None
    return time.perf_counter() - started
