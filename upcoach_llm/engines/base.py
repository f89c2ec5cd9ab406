"""The engine interfaces the services program against.

A chat engine streams ``TextChunk`` values as the model produces them, then exactly one
``Finished``. With ``sampling.logprobs`` each chunk carries the log probabilities of the tokens
whose text it holds (an engine that cannot give them refuses the request instead). An
embedding engine turns a batch of texts into L2-normalised vectors. Engines raise
upcoach_llm.common.errors types (NotFound for a model they do not have, Unavailable when
unreachable, OutOfRange when the prompt does not fit) so the status code survives to the caller.
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import FinishReasonName
from upcoach_llm.common.chat import Message, Sampling


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, the natural log of its probability, and the most likely
    tokens at its position (``top``: (text, logprob) pairs, most likely first)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    def to_proto(self) -> common_pb2.TokenLogprob:
        return common_pb2.TokenLogprob(
            token=self.token, logprob=self.logprob,
            top_logprobs=[common_pb2.TopLogprob(token=t, logprob=p) for t, p in self.top])


@dataclass(frozen=True)
class TextChunk:
    """Text the model produced since the previous chunk, with its tokens' log probabilities
    when the request asked for them."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()

    @classmethod
    def joined(cls, chunks: list[TextChunk]) -> TextChunk:
        """One chunk holding the text and the log probabilities of ``chunks``, in order."""
        if len(chunks) == 1:
            return chunks[0]
        return cls("".join(c.text for c in chunks),
                   tuple(lp for c in chunks for lp in c.logprobs))


@dataclass(frozen=True)
class Finished:
    """The end of a generation, with its usage."""

    reason: FinishReasonName
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float
    generation_ms: float

    def usage(self) -> common_pb2.Usage:
        """The proto Usage of this generation."""
        return common_pb2.Usage(
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            total_tokens=self.prompt_tokens + self.completion_tokens,
            time_to_first_token_ms=self.time_to_first_token_ms, generation_ms=self.generation_ms)

    @classmethod
    def now(cls, upstream_reason: str | None, prompt_tokens: int, completion_tokens: int, *,
            started: float, first: float | None) -> Finished:
        """The end of a remote generation as of now: ``started`` and ``first`` (the first text)
        are time.perf_counter() readings; any upstream reason but "length" is "stop"."""
        now = time.perf_counter()
        return cls(reason="length" if upstream_reason == "length" else "stop",
                   prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   time_to_first_token_ms=((first or now) - started) * 1000,
                   generation_ms=(now - started) * 1000)


@dataclass(frozen=True)
class PullProgress:
    """One progress report of a model pull (or create) on a backend."""

    status: str
    digest: str = ""
    completed: int = 0
    total: int = 0
    done: bool = False


@dataclass(frozen=True)
class EngineHealth:
    """Whether an engine answers, and which of its models are installed."""

    healthy: bool
    models: tuple[str, ...] = ()
    detail: str = ""


class ChatEngine(abc.ABC):
    """Generates chat replies for the models of one backend."""

    @abc.abstractmethod
    async def load(self) -> None:
        """Loads and warms the model, or checks the remote engine answers; raises on failure."""

    @abc.abstractmethod
    def stream(self, model: str, messages: list[Message],
               sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        """Streams the reply; closing the iterator early stops generation within a token or two."""

    def occupancy(self) -> tuple[int, int] | None:
        """(busy contexts, requests waiting for one), for engines that queue here; else None."""
        return None

    async def health(self) -> EngineHealth:
        """Probes the engine; the default says it is healthy with no model list."""
        return EngineHealth(healthy=True)

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Releases the engine's resources."""


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors for a batch, in input order."""

    vectors: list[list[float]]
    prompt_tokens: int
    dimensions: int


class EmbeddingEngine(abc.ABC):
    """Embeds text for the models of one backend."""

    @abc.abstractmethod
    async def load(self) -> None:
        """Loads the model, or checks the remote engine answers; raises on failure."""

    @abc.abstractmethod
    async def embed(self, model: str, texts: list[str]) -> EmbeddingResult:
        """Returns one L2-normalised vector per text."""

    async def health(self) -> EngineHealth:
        """Probes the engine; the default says it is healthy with no model list."""
        return EngineHealth(healthy=True)

    async def close(self) -> None:  # noqa: B027
        """Releases the engine's resources."""
