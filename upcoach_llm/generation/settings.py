"""The generation service's own settings: server defaults for unset sampling fields and how long
stream text may wait to be sent together.

GENERATION_DEFAULT_MAX_TOKENS / _TEMPERATURE / _TOP_P, GENERATION_MAX_TOKENS_LIMIT and
STREAM_FLUSH_MS, declared in upcoach_llm/common/variables.py; the engines' settings (LLAMA_*, ...)
are read with each engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from upcoach_llm.common.chat import SamplingDefaults
from upcoach_llm.common.variables import VARIABLES


@dataclass(frozen=True)
class GenerationSettings:
    """Everything the servicer needs besides its engines."""

    sampling: SamplingDefaults
    flush_s: float = 0.0

    @classmethod
    def from_env(cls) -> GenerationSettings:
        return cls(SamplingDefaults.from_env(), VARIABLES.float("STREAM_FLUSH_MS") / 1000)
