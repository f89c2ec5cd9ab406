"""Settings of the remote engines (Ollama, OpenAI-compatible), read once from the environment.

    REMOTE_CONNECT_TIMEOUT   seconds to open a connection to a remote engine (default 3)
    REMOTE_READ_TIMEOUT      longest wait, in seconds, for the next byte of a reply (default 120:
                             Ollama loads a model on its first request)
    OLLAMA_NUM_CTX           context window Ollama runs the model with (options.num_ctx; unset:
                             the model's own)
    OLLAMA_KEEP_ALIVE        how long Ollama keeps the model loaded after a request (keep_alive:
                             "5m", "60m", "1h", "-1" for ever, or seconds; unset: Ollama's default)
    VLLM_API_KEY             bearer token for an OpenAI-compatible server started with --api-key
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.config import env_float, env_int, env_str
from services.common.errors import ConfigError

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
        num_ctx = env_int("OLLAMA_NUM_CTX", 0, minimum=0, maximum=1 << 20)
        return cls(
            connect_timeout=env_float("REMOTE_CONNECT_TIMEOUT", 3.0, minimum=0.05),
            read_timeout=env_float("REMOTE_READ_TIMEOUT", 120.0, minimum=0.1),
            ollama_num_ctx=num_ctx or None,
            ollama_keep_alive=_keep_alive(env_str("OLLAMA_KEEP_ALIVE", "")),
            openai_api_key=env_str("VLLM_API_KEY", ""),
        )


def _keep_alive(raw: str) -> str | int | None:
    """Ollama's keep_alive: a duration string, or a bare number of seconds."""
    if not raw:
        return None
    if not _DURATION.match(raw):
        raise ConfigError(f"OLLAMA_KEEP_ALIVE: {raw!r} is not a duration (e.g. 5m, 60m, 1h, -1)")
    return int(raw) if raw.lstrip("-").isdigit() else raw
