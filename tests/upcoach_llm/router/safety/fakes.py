"""A crisis config and an embedding engine with chosen vectors, to test the detector's mechanics
(exemplars, margins, windows, the cache) without the model."""

from __future__ import annotations

import math

from upcoach_llm.engines.base import EmbeddingEngine, EmbeddingResult
from upcoach_llm.router.safety.config import SafetyFile

RESPONSE = "Call or text 988."


def config(**overrides: object) -> SafetyFile:
    """self_harm with one exemplar ("RISK": axis 0), one benign exemplar ("BENIGN": axis 1)."""
    data = {
        "default_locale": "en", "cache_size": 100, "max_user_messages": 50, "window": 2,
        "categories": {"self_harm": {
            "threshold": 0.6, "margin": 0.05, "conversation_threshold": 0.6,
            "response": {"en": RESPONSE}, "patterns": [r"\bkill myself\b"],
            "exemplars": ["RISK"]}},
        "benign_exemplars": ["BENIGN"], "idioms": [r"\bkilling me\b"]}
    data.update(overrides)
    return SafetyFile.model_validate(data)


def unit(*components: float) -> list[float]:
    norm = math.sqrt(sum(c * c for c in components))
    return [c / norm for c in components]


class FakeEngine(EmbeddingEngine):
    """Vectors from a table (4 dimensions); any other text is axis 3 (unrelated to both)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {"RISK": unit(1, 0, 0, 0), "BENIGN": unit(0, 1, 0, 0), **table}
        self.calls: list[list[str]] = []

    async def load(self) -> None:
        pass

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResult:
        self.calls.append(list(texts))
        return EmbeddingResult(vectors=[self.table.get(t, unit(0, 0, 0, 1)) for t in texts],
                               prompt_tokens=len(texts), dimensions=4)
