"""Chat requests as plain Python values, validated once where they enter a service.

Engines work on ``Message`` and ``Sampling``, never on protobuf messages. Validation errors are
InvalidArgument naming the field as the caller wrote it (``messages[1].content``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import ROLE_NAMES, ROLE_VALUES
from upcoach_llm.common.errors import ConfigError, InvalidArgument
from upcoach_llm.common.limits import (
    MAX_MESSAGES,
    MAX_PROMPT_CHARS,
    MAX_STOP_LENGTH,
    MAX_STOP_SEQUENCES,
)
from upcoach_llm.common.variables import VARIABLES


@dataclass(frozen=True)
class Message:
    """One conversation turn: role is system, user or assistant."""

    role: str
    content: str


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters with every default filled in."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def reproducible(self) -> bool:
        """True when the same request gives the same reply (greedy, or a fixed seed)."""
        return self.temperature == 0 or self.seed is not None


@dataclass(frozen=True)
class SamplingDefaults:
    """Server defaults for unset sampling fields, and the largest max_tokens allowed."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens_limit: int = 4096

    @classmethod
    def from_env(cls) -> SamplingDefaults:
        """GENERATION_DEFAULT_MAX_TOKENS / _TEMPERATURE / _TOP_P, GENERATION_MAX_TOKENS_LIMIT:
        the generation service and the router (which runs remote engines itself) share them."""
        limit = VARIABLES.int("GENERATION_MAX_TOKENS_LIMIT")
        max_tokens = VARIABLES.int("GENERATION_DEFAULT_MAX_TOKENS")
        if max_tokens > limit:
            raise ConfigError(f"GENERATION_DEFAULT_MAX_TOKENS: {max_tokens} is above the maximum "
                              f"{limit} (GENERATION_MAX_TOKENS_LIMIT)")
        top_p = VARIABLES.float("GENERATION_DEFAULT_TOP_P")
        if top_p == 0.0:
            raise ConfigError(f"GENERATION_DEFAULT_TOP_P: {top_p} is not in (0, 1]")
        return cls(max_tokens=max_tokens, temperature=VARIABLES.float(
            "GENERATION_DEFAULT_TEMPERATURE"), top_p=top_p, max_tokens_limit=limit)


def messages_from_proto(messages: Any) -> list[Message]:
    """Validates and converts repeated ChatMessage."""
    if len(messages) == 0:
        raise InvalidArgument("at least one message is required", field="messages")
    if len(messages) > MAX_MESSAGES:
        raise InvalidArgument(f"at most {MAX_MESSAGES} messages are allowed", field="messages")
    result = []
    total = 0
    for index, message in enumerate(messages):
        role = ROLE_NAMES.get(message.role)
        if role is None:
            raise InvalidArgument(
                f"unknown role {message.role}; use ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT",
                field=f"messages[{index}].role")
        if not message.content.strip():
            raise InvalidArgument("must not be empty", field=f"messages[{index}].content")
        total += len(message.content)
        result.append(Message(role=role, content=message.content))
    if total > MAX_PROMPT_CHARS:
        raise InvalidArgument(
            f"{total} characters in all, more than the limit of {MAX_PROMPT_CHARS}",
            field="messages")
    return result


def messages_to_proto(messages: list[Message]) -> list[common_pb2.ChatMessage]:
    """Converts validated messages back to protobuf."""
    return [common_pb2.ChatMessage(role=ROLE_VALUES[m.role], content=m.content)
            for m in messages]


def sampling_from_proto(params: common_pb2.SamplingParams,
                        defaults: SamplingDefaults) -> Sampling:
    """Validates SamplingParams and fills unset fields from defaults."""
    max_tokens = params.max_tokens if params.HasField("max_tokens") else defaults.max_tokens
    if max_tokens <= 0:
        raise InvalidArgument(f"must be positive, got {max_tokens}", field="sampling.max_tokens")
    if max_tokens > defaults.max_tokens_limit:
        raise InvalidArgument(f"{max_tokens} is above the limit of {defaults.max_tokens_limit}",
                              field="sampling.max_tokens")
    temperature = params.temperature if params.HasField("temperature") else defaults.temperature
    if not math.isfinite(temperature) or not 0.0 <= temperature <= 2.0:
        raise InvalidArgument(f"must be in [0, 2], got {temperature:g}",
                              field="sampling.temperature")
    top_p = params.top_p if params.HasField("top_p") else defaults.top_p
    if not math.isfinite(top_p) or not 0.0 < top_p <= 1.0:
        raise InvalidArgument(f"must be in (0, 1], got {top_p:g}", field="sampling.top_p")
    stop = tuple(params.stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidArgument(f"at most {MAX_STOP_SEQUENCES} sequences", field="sampling.stop")
    for index, sequence in enumerate(stop):
        if not sequence or len(sequence) > MAX_STOP_LENGTH:
            raise InvalidArgument(f"must be 1 to {MAX_STOP_LENGTH} characters",
                                  field=f"sampling.stop[{index}]")
    seed = params.seed if params.HasField("seed") else None
    return Sampling(max_tokens=max_tokens, temperature=round(temperature, 6),
                    top_p=round(top_p, 6), stop=stop, seed=seed)
