"""The generation service's own settings: server defaults for unset sampling fields.

    GENERATION_DEFAULT_MAX_TOKENS    256     GENERATION_DEFAULT_TEMPERATURE  0.7
    GENERATION_DEFAULT_TOP_P         0.95    GENERATION_MAX_TOKENS_LIMIT     4096

The engines' settings (LLAMA_*, GENERATION_PARALLEL, ...) live with each engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.chat import SamplingDefaults
from services.common.config import env_float, env_int
from services.common.errors import ConfigError


@dataclass(frozen=True)
class GenerationSettings:
    """Everything the servicer needs besides its engines."""

    sampling: SamplingDefaults

    @classmethod
    def from_env(cls) -> GenerationSettings:
        limit = env_int("GENERATION_MAX_TOKENS_LIMIT", 4096, minimum=1)
        max_tokens = env_int("GENERATION_DEFAULT_MAX_TOKENS", 256, minimum=1, maximum=limit)
        temperature = env_float("GENERATION_DEFAULT_TEMPERATURE", 0.7, minimum=0.0)
        if temperature > 2.0:
            raise ConfigError(f"GENERATION_DEFAULT_TEMPERATURE: {temperature} is above 2")
        top_p = env_float("GENERATION_DEFAULT_TOP_P", 0.95, minimum=0.0)
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f"GENERATION_DEFAULT_TOP_P: {top_p} is not in (0, 1]")
        return cls(SamplingDefaults(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                    max_tokens_limit=limit))
