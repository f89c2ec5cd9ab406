"""Settings of the remote engines (Ollama, OpenAI-compatible), read once from the environment.

REMOTE_CONNECT_TIMEOUT_S, REMOTE_READ_TIMEOUT_S (120 by default: Ollama loads a model on its first
request), OLLAMA_NUM_CTX, OLLAMA_KEEP_ALIVE and VLLM_API_KEY are declared in
upcoach_llm/common/variables.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.variables import VARIABLES

_DURATION = re.compile(r"^-?\d+(?:\.\d+)?(?:ms|s|m|h)?$")


@dataclass(frozen=True)
class RemoteSettings:
    """Timeouts and the options passed through to every request."""

    connect_timeout: float = 3.0
    read_timeout: float = 120.0
    ollama_num_ctx: int | None = None
    ollama_keep_alive: str | int | None = None
    openai_api_key: str = ""

    @classmethod
    def from_env(cls) -> RemoteSettings:
        return cls(
            connect_timeout=VARIABLES.float("REMOTE_CONNECT_TIMEOUT_S"),
            read_timeout=VARIABLES.float("REMOTE_READ_TIMEOUT_S"),
            ollama_num_ctx=VARIABLES.int("OLLAMA_NUM_CTX") or None,
            ollama_keep_alive=_keep_alive(VARIABLES.str("OLLAMA_KEEP_ALIVE")),
            openai_api_key=VARIABLES.str("VLLM_API_KEY"),
        )


def _keep_alive(raw: str) -> str | int | None:
    """Ollama's keep_alive: a duration string, or a bare number of seconds."""
    if not raw:
        return None
    if not _DURATION.match(raw):
        raise ConfigError(f"OLLAMA_KEEP_ALIVE: {raw!r} is not a duration (e.g. 5m, 60m, 1h, -1)")
    return int(raw) if raw.lstrip("-").isdigit() else raw
