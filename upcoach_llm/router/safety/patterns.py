"""The explicit half of the crisis check: regular expressions per category over a sentence, read
after the idioms ("this habit is killing me", "dying to try") are blanked out; and the splitting
of a message into the sentences and clauses both halves read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from upcoach_llm.router.safety.config import SafetyFile

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\s*\n+\s*")
# A run of blanks without a newline, read as one space first: both patterns above and below
# backtrack across such a run from each of its characters (32,000 spaces took 26 s), and
# neither the patterns nor the tokenizer tell one blank from several.
_BLANKS = re.compile(r"[^\S\n]+")
_CLAUSE = re.compile(r"\s*(?:,|:|\s[-\u2013\u2014]\s)\s*")
MIN_WORDS = 3


def sentences(text: str) -> list[str]:
    """text split into sentences, a fragment under MIN_WORDS words joined to the one before."""
    parts: list[str] = []
    for piece in _SENTENCE_END.split(_BLANKS.sub(" ", text)):
        piece = piece.strip()
        if not piece:
            continue
        if parts and (len(piece.split()) < MIN_WORDS or len(parts[-1].split()) < MIN_WORDS):
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return parts or [text.strip()]


def segments(text: str, limit: int) -> list[str]:
    """What the detector reads of a message: its sentences, a sentence with several clauses of
    at least MIN_WORDS words as those clauses ("I cancelled my gym membership, I won't be
    around" hides a short clause in a long sentence); at most ``limit``, the last one taking
    the rest of a longer message."""
    parts: list[str] = []
    for sentence in sentences(text):
        clauses = [c for c in _CLAUSE.split(sentence) if len(c.split()) >= MIN_WORDS]
        parts.extend(clauses if len(clauses) > 1 else [sentence])
    if len(parts) > limit:
        parts = [*parts[:limit - 1], " ".join(parts[limit - 1:])]
    return parts


@dataclass(frozen=True)
class PatternMatch:
    """The category a pattern found and which pattern (``pattern self_harm[3]``)."""

    category: str
    rule: str


class PatternRules:
    """Every category's patterns, in the file's order (the first category wins)."""

    def __init__(self, config: SafetyFile) -> None:
        idioms = "|".join(f"(?:{p})" for p in config.idioms)
        self._idioms = re.compile(idioms, re.IGNORECASE) if idioms else None
        self._rules = [(name, f"pattern {name}[{i}]", re.compile(p, re.IGNORECASE))
                       for name, category in config.categories.items()
                       for i, p in enumerate(category.patterns)]

    def without_idioms(self, text: str) -> str:
        """text with every idiom replaced by a space."""
        return self._idioms.sub(" ", text) if self._idioms else text

    def match(self, text: str) -> PatternMatch | None:
        """The first pattern that matches text once its idioms are gone."""
        plain = self.without_idioms(text.replace("\u2019", "'"))
        for category, rule, regex in self._rules:
            if regex.search(plain):
                return PatternMatch(category, rule)
        return None
