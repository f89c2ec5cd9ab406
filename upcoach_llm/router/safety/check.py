"""The crisis check as the router's handlers use it: on or off (SAFETY_CHECK), counted in
``upcoach_router_safety_flags_total{category}`` and logged with the request id, category, score
and rule, never the message text (a warning; Route's answer, which answers nothing, is neither
counted nor more than info). The crisis response is in the request's languages (BCP 47 tags the
handlers checked, most preferred first; SafetyFile.response tries each and its shorter tags,
then the default locale)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import SAFETY_CATEGORY_VALUES
from upcoach_llm.common.logging import get_logger
from upcoach_llm.router.safety.config import SafetyFile, load_safety
from upcoach_llm.router.safety.detector import SafetyDetector, Verdict
from upcoach_llm.router.safety.embeddings import packaged_engine

log = get_logger(__name__)

FLAGS = Counter("upcoach_router_safety_flags",
                "Chats and hybrid decisions the crisis check flagged, by category", ["category"])


@dataclass(frozen=True)
class Flag:
    """A flagged conversation: its category (name and proto value), the crisis response and
    what the detector found."""

    category: str
    value: int
    response: str
    verdict: Verdict


class SafetyCheck:
    """The detector behind an on/off switch; off, every check answers None at no cost."""

    def __init__(self, detector: SafetyDetector | None) -> None:
        self._detector = detector

    @classmethod
    def off(cls) -> SafetyCheck:
        return cls(None)

    @classmethod
    def packaged(cls, config: SafetyFile | None = None, threads: int = 1) -> SafetyCheck:
        """config/safety.yaml's detector on the packaged MiniLM (loaded by ``load``)."""
        config = config or load_safety()
        return cls(SafetyDetector(config, packaged_engine(threads)))

    @property
    def enabled(self) -> bool:
        return self._detector is not None

    async def load(self) -> None:
        if self._detector is not None:
            await self._detector.load()

    async def close(self) -> None:
        if self._detector is not None:
            await self._detector.close()

    async def conversation(self, request_id: str, messages: Iterable[common_pb2.ChatMessage],
                           rpc: str, *, count: bool = True,
                           locales: Sequence[str] = ()) -> Flag | None:
        """The flag of a conversation's user messages, or None."""
        if self._detector is None:
            return None
        texts = [m.content for m in messages
                 if m.role == common_pb2.ROLE_USER and m.content.strip()]
        return await self._check(request_id, texts, rpc, count, locales)

    async def prompt(self, request_id: str, text: str, rpc: str, *,
                     locales: Sequence[str] = ()) -> Flag | None:
        """The flag of one prompt (an old client's hybrid decision), or None."""
        if self._detector is None or not text.strip():
            return None
        return await self._check(request_id, [text], rpc, True, locales)

    async def _check(self, request_id: str, texts: list[str], rpc: str,
                     count: bool, locales: Sequence[str]) -> Flag | None:
        if not texts:
            return None
        verdict = await self._detector.check(texts)  # type: ignore[union-attr]
        if verdict is None:
            return None
        if count:
            FLAGS.labels(verdict.category).inc()
        fields = {"request_id": request_id, "rpc": rpc, "category": verdict.category,
                  "score": round(verdict.score, 3), "rule": verdict.rule,
                  "user_message": verdict.message, "locales": list(locales)}
        (log.warning if count else log.info)("crisis check flagged a conversation",
                                             extra={"fields": fields})
        config = self._detector.config  # type: ignore[union-attr]
        return Flag(verdict.category, SAFETY_CATEGORY_VALUES[verdict.category],
                    config.response(verdict.category, *locales), verdict)
