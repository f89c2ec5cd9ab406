"""Model pulls, as a stream of progress reports, by the puller of the backend's type.

Embedded models ship inside PyPI packages, so a pull only verifies the files are there. Ollama
pulls stream its /api/pull progress. A type without a puller (an OpenAI-compatible server such
as vLLM loads one model at start-up) refuses with its reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import FailedPrecondition
from upcoach_llm.engines.base import PullProgress
from upcoach_llm.engines.types import type_of
from upcoach_llm.engines.types.base import Puller


def can_pull(backend: BackendConfig, model: str) -> bool:
    """Whether a pull of model on backend makes sense."""
    return type_of(backend).can_pull(backend, model)


def puller_for(backend: BackendConfig) -> Puller:
    """The pull implementation for the backend's type."""
    return type_of(backend).pull or _refuse


async def _refuse(backend: BackendConfig, model: str) -> AsyncIterator[PullProgress]:
    raise FailedPrecondition(
        f"backend {backend.name} ({backend.type}) cannot pull models: "
        f"{type_of(backend).no_pull_reason}")
    yield  # pragma: no cover - makes this an async generator
