"""The generation service's own settings: server defaults for unset sampling fields.

GENERATION_DEFAULT_MAX_TOKENS / _TEMPERATURE / _TOP_P and GENERATION_MAX_TOKENS_LIMIT, declared in
upcoach_llm/common/variables.py; the engines' settings (LLAMA_*, ...) are read with each engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from upcoach_llm.common.chat import SamplingDefaults
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.variables import VARIABLES


@dataclass(frozen=True)
class GenerationSettings:
    """Everything the servicer needs besides its engines."""

    sampling: SamplingDefaults

    @classmethod
    def from_env(cls) -> GenerationSettings:
        limit = VARIABLES.int("GENERATION_MAX_TOKENS_LIMIT")
        max_tokens = VARIABLES.int("GENERATION_DEFAULT_MAX_TOKENS")
        if max_tokens > limit:
            raise ConfigError(f"GENERATION_DEFAULT_MAX_TOKENS: {max_tokens} is above the maximum "
                              f"{limit} (GENERATION_MAX_TOKENS_LIMIT)")
        temperature = VARIABLES.float("GENERATION_DEFAULT_TEMPERATURE")
        top_p = VARIABLES.float("GENERATION_DEFAULT_TOP_P")
        if top_p == 0.0:
            raise ConfigError(f"GENERATION_DEFAULT_TOP_P: {top_p} is not in (0, 1]")
        return cls(SamplingDefaults(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                    max_tokens_limit=limit))
