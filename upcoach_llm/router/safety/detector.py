"""The crisis detector: reads a conversation's user messages and names the risk it finds, if any.

Each message is split into sentences (and the clauses of a long sentence). A sentence is
flagged by a category's pattern (explicit statements, idioms blanked out first), or by its
MiniLM embedding: at least the category's ``threshold`` from the nearest of its exemplars and
``margin`` closer to it than to the nearest benign exemplar (the hard negatives: idioms,
training talk, sadness without risk). Risk that builds over several turns, none alarming alone,
is caught by the mean of every ``window`` consecutive messages, scored the same way against
``conversation_threshold``. Patterns win over exemplars; among exemplar hits, the category
that clears its bar by the most.

What a message yields (its pattern match, its sentences' similarities to every exemplar, its
mean vector) is kept in a bounded LRU keyed by a hash of its text: a conversation is checked
again on every turn, so a 10-turn conversation whose first nine turns were seen costs one
engine call, for the new message, and a few small array operations. A check with more than
HEAVY_CHARS of new text (up to 200,000 characters: tens of seconds of the engine's one worker) is
read on a thread and waits for any other heavy check, so short turns keep their pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from upcoach_llm.engines.base import EmbeddingEngine
from upcoach_llm.router.safety.config import SafetyFile
from upcoach_llm.router.safety.embeddings import embed, similarities
from upcoach_llm.router.safety.patterns import PatternMatch, PatternRules, segments

MAX_SEGMENTS = 16  # per message; the last one takes the rest of a longer message
# New text beyond which a check is heavy (a turn is rarely longer; up to 200,000 characters are
# tens of seconds of the engine's one worker): it is read on a thread, and heavy checks take the
# engine one at a time, so a turn's sentences wait behind at most one heavy check's, never many.
HEAVY_CHARS = 4_000
_NO_WAIT = contextlib.nullcontext()


@dataclass(frozen=True)
class Verdict:
    """What was found: the category, the score (1.0 for a pattern), the rule that fired
    (``pattern self_harm[3]``, ``exemplar``, ``conversation``) and the user message, counted
    from the first."""

    category: str
    score: float
    rule: str
    message: int


@dataclass(frozen=True)
class MessageScores:
    """One message, read: its first pattern match, its segments' similarities to the exemplars
    (one row each), and their mean vector with its similarities (the mean of the rows)."""

    pattern: PatternMatch | None
    rows: np.ndarray
    mean: np.ndarray
    mean_rows: np.ndarray


class Exemplars:
    """The exemplars' vectors in one matrix: each category's rows, then the benign ones."""

    def __init__(self, config: SafetyFile, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self._bars: list[tuple[str, slice, float, float, float]] = []
        start = 0
        for name, category in config.categories.items():
            rows = slice(start, start + len(category.exemplars))
            self._bars.append((name, rows, category.threshold, category.conversation_threshold,
                               category.margin))
            start = rows.stop
        self._benign = slice(start, start + len(config.benign_exemplars))

    @staticmethod
    def texts(config: SafetyFile) -> list[str]:
        """The exemplars in the matrix's order."""
        return [e for c in config.categories.values() for e in c.exemplars] + list(
            config.benign_exemplars)

    def best(self, similarity: np.ndarray, conversation: bool = False,
             ) -> tuple[str, float, int] | None:
        """Over rows of similarities to the exemplars: the category whose threshold and margin a
        row beats by the most, as (category, score, row); None when no row beats any."""
        if not len(similarity):
            return None
        benign = similarity[:, self._benign].max(axis=1)
        found: tuple[float, str, float, int] | None = None
        for name, rows, threshold, conversation_threshold, margin in self._bars:
            scores = similarity[:, rows].max(axis=1)
            bar = conversation_threshold if conversation else threshold
            over = np.minimum(scores - bar, scores - benign - margin)
            row = int(over.argmax())
            if over[row] >= 0 and (found is None or over[row] > found[0]):
                found = (float(over[row]), name, float(scores[row]), row)
        return None if found is None else (found[1], found[2], found[3])


class SafetyDetector:
    """Patterns, then exemplars per sentence, then exemplars over runs of recent turns."""

    def __init__(self, config: SafetyFile, engine: EmbeddingEngine) -> None:
        self._config = config
        self._engine = engine
        self._patterns = PatternRules(config)
        self._exemplars: Exemplars | None = None
        self._cache: OrderedDict[bytes, MessageScores] = OrderedDict()
        self._heavy = asyncio.Lock()
        self.embedded = 0  # segments embedded since start (the cache's misses)

    @property
    def config(self) -> SafetyFile:
        return self._config

    async def load(self) -> None:
        """Loads the model and embeds the exemplars."""
        await self._engine.load()
        vectors = await embed(self._engine, Exemplars.texts(self._config))
        self._exemplars = Exemplars(self._config, vectors)

    async def close(self) -> None:
        await self._engine.close()

    async def check(self, texts: list[str]) -> Verdict | None:
        """The risk in a conversation's user messages (oldest first), or None."""
        offset = max(0, len(texts) - self._config.max_user_messages)
        scores = await self._scores(texts[offset:])
        for number, message in enumerate(scores):
            if message.pattern is not None:
                return Verdict(message.pattern.category, 1.0, message.pattern.rule,
                               offset + number)
        exemplars = self._exemplars
        assert exemplars is not None
        rows = np.concatenate([m.rows for m in scores])
        found = exemplars.best(rows)
        if found is not None:
            owner = np.repeat(np.arange(len(scores)), [len(m.rows) for m in scores])
            name, score, row = found
            return Verdict(name, score, "exemplar", offset + int(owner[row]))
        if len(scores) < 2:
            return None
        found = exemplars.best(_windows(scores, self._config.window), conversation=True)
        if found is not None:
            name, score, row = found
            last = min(row + self._config.window, len(scores)) - 1
            return Verdict(name, score, "conversation", offset + last)
        return None

    async def _scores(self, texts: list[str]) -> list[MessageScores]:
        """Each message read, from the cache or (all the new ones in one engine call) afresh."""
        if self._exemplars is None:
            raise RuntimeError("the crisis detector is not loaded")
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        found: dict[bytes, MessageScores] = {}
        unseen: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                found[key] = cached
            else:
                unseen.setdefault(key, text)
        if unseen:
            heavy = sum(map(len, unseen.values())) > HEAVY_CHARS
            # Read off the event loop when long: the regexes are linear, but 200,000 characters
            # would still hold every other chat of this router for most of a second.
            new = (await asyncio.to_thread(self._read, unseen) if heavy
                   else self._read(unseen))
            flat = [s for parts, _ in new.values() for s in parts]
            async with self._heavy if heavy else _NO_WAIT:
                vectors = await embed(self._engine, flat)
            rows = similarities(vectors, self._exemplars.vectors)
            self.embedded += len(flat)
            start = 0
            for key, (parts, pattern) in new.items():
                end = start + len(parts)
                mean = vectors[start:end].mean(axis=0)
                found[key] = MessageScores(pattern, rows[start:end], mean,
                                           rows[start:end].mean(axis=0))
                self._remember(key, found[key])
                start = end
        return [found[k] for k in keys]

    def _read(self, texts: dict[bytes, str]) -> dict[bytes, tuple[list[str], PatternMatch | None]]:
        """Each message's segments and its first pattern match."""
        read = {}
        for key, text in texts.items():
            parts = segments(text, MAX_SEGMENTS)
            read[key] = (parts, self._first_pattern(parts))
        return read

    def _first_pattern(self, parts: list[str]) -> PatternMatch | None:
        for part in parts:
            match = self._patterns.match(part)
            if match is not None:
                return match
        return None

    def _remember(self, key: bytes, scores: MessageScores) -> None:
        if self._config.cache_size <= 0:
            return
        self._cache[key] = scores
        while len(self._cache) > self._config.cache_size:
            self._cache.popitem(last=False)


def _windows(scores: list[MessageScores], window: int) -> np.ndarray:
    """The similarities of the normalised mean of every run of ``window`` consecutive messages
    (one run of all of them when there are fewer): cosine is linear, so a run's row is the sum
    of its messages' mean rows over the norm of the sum of their mean vectors."""
    size = min(window, len(scores))
    means = np.stack([m.mean for m in scores])
    rows = np.stack([m.mean_rows for m in scores])
    runs = [slice(i, i + size) for i in range(len(scores) - size + 1)]
    norms = np.array([max(float(np.linalg.norm(means[r].sum(axis=0))), 1e-12) for r in runs])
    return np.stack([rows[r].sum(axis=0) for r in runs]) / norms[:, None]
