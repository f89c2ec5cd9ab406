"""Chat requests as plain Python values, validated once where they enter a service.

Engines work on ``Message`` and ``Sampling``, never on protobuf messages. Validation errors are
InvalidArgument naming the field as the caller wrote it (``messages[1].content``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import RESPONSE_FORMAT_TYPE_NAMES, ROLE_NAMES, ROLE_VALUES
from upcoach_llm.common.errors import ConfigError, InvalidArgument
from upcoach_llm.common.limits import (
    MAX_MESSAGES,
    MAX_NAME_CHARS,
    MAX_PENALTY,
    MAX_PROMPT_CHARS,
    MAX_SCHEMA_CHARS,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_REPEAT,
    MAX_STOP_LENGTH,
    MAX_STOP_SEQUENCES,
    MAX_TOP_LOGPROBS,
)
from upcoach_llm.common.variables import VARIABLES


@dataclass(frozen=True)
class Message:
    """One conversation turn: role is system, user or assistant."""

    role: str
    content: str


@dataclass(frozen=True)
class ResponseFormat:
    """The shape a reply must take: free text, any JSON object, or JSON valid against a schema
    (``schema_json``, checked to be a JSON object; ``schema`` is it parsed)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema_json: str = ""
    schema_name: str = ""

    @property
    def is_json(self) -> bool:
        return self.type != "text"

    @property
    def schema(self) -> dict[str, Any] | None:
        """The parsed schema, for json_schema; else None."""
        return json.loads(self.schema_json) if self.type == "json_schema" else None


TEXT = ResponseFormat()


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters with every default filled in. Frequency and presence penalties are
    OpenAI's, in [-2, 2] (0 is off); ``repeat_penalty`` is llama.cpp's, from the server's
    configuration (1.0 is off); ``top_logprobs`` is only ever set with ``logprobs``.
    ``max_tokens_defaulted``: the caller set no max_tokens, so an engine that knows its context
    shortens the server's default to the room the prompt leaves instead of refusing."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    response_format: ResponseFormat = TEXT
    logprobs: bool = False
    top_logprobs: int = 0
    repeat_penalty: float = 1.0
    max_tokens_defaulted: bool = False

    @property
    def reproducible(self) -> bool:
        """True when the same request gives the same reply (greedy, or a fixed seed)."""
        return self.temperature == 0 or self.seed is not None


@dataclass(frozen=True)
class SamplingDefaults:
    """Server defaults for unset sampling fields, the largest max_tokens allowed, and the
    repeat penalty of the llama.cpp-based engines (not a request field)."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens_limit: int = 4096
    repeat_penalty: float = 1.0

    @classmethod
    def from_env(cls) -> SamplingDefaults:
        """GENERATION_DEFAULT_MAX_TOKENS / _TEMPERATURE / _TOP_P, GENERATION_MAX_TOKENS_LIMIT,
        GENERATION_REPEAT_PENALTY: the generation service and the router (which runs remote
        engines itself) share them."""
        limit = VARIABLES.int("GENERATION_MAX_TOKENS_LIMIT")
        max_tokens = VARIABLES.int("GENERATION_DEFAULT_MAX_TOKENS")
        if max_tokens > limit:
            raise ConfigError(f"GENERATION_DEFAULT_MAX_TOKENS: {max_tokens} is above the maximum "
                              f"{limit} (GENERATION_MAX_TOKENS_LIMIT)")
        top_p = VARIABLES.float("GENERATION_DEFAULT_TOP_P")
        if top_p == 0.0:
            raise ConfigError(f"GENERATION_DEFAULT_TOP_P: {top_p} is not in (0, 1]")
        return cls(max_tokens=max_tokens, temperature=VARIABLES.float(
            "GENERATION_DEFAULT_TEMPERATURE"), top_p=top_p, max_tokens_limit=limit,
                   repeat_penalty=VARIABLES.float("GENERATION_REPEAT_PENALTY"))


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
        if not message.content.strip() and role != "assistant":
            # An assistant's may be: a reply of no text goes back as history as it came.
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
    top_logprobs = params.top_logprobs if params.HasField("top_logprobs") else 0
    if not 0 <= top_logprobs <= MAX_TOP_LOGPROBS:
        raise InvalidArgument(f"must be 0 to {MAX_TOP_LOGPROBS}, got {top_logprobs}",
                              field="sampling.top_logprobs")
    if top_logprobs and not params.logprobs:
        raise InvalidArgument("needs sampling.logprobs", field="sampling.top_logprobs")
    return Sampling(max_tokens=max_tokens, temperature=round(temperature, 6),
                    top_p=round(top_p, 6), stop=stop, seed=seed,
                    frequency_penalty=_penalty(params, "frequency_penalty"),
                    presence_penalty=_penalty(params, "presence_penalty"),
                    response_format=_response_format(params.response_format),
                    logprobs=params.logprobs, top_logprobs=top_logprobs,
                    repeat_penalty=defaults.repeat_penalty,
                    max_tokens_defaulted=not params.HasField("max_tokens"))


def _penalty(params: common_pb2.SamplingParams, name: str) -> float:
    value = getattr(params, name) if params.HasField(name) else 0.0
    if not math.isfinite(value) or not -MAX_PENALTY <= value <= MAX_PENALTY:
        raise InvalidArgument(f"must be in [-{MAX_PENALTY:g}, {MAX_PENALTY:g}], got {value:g}",
                              field=f"sampling.{name}")
    return round(value, 6)


def _response_format(proto: common_pb2.ResponseFormat) -> ResponseFormat:
    """Validates ResponseFormat: a json_schema needs a schema that is a JSON object."""
    field = "sampling.response_format"
    kind = RESPONSE_FORMAT_TYPE_NAMES.get(proto.type) if proto.type else "text"
    if kind is None:
        raise InvalidArgument(f"unknown response format type {proto.type}", field=f"{field}.type")
    if kind != "json_schema":
        for name in ("schema_json", "schema_name"):
            if getattr(proto, name):
                raise InvalidArgument(f"only allowed with type json_schema, not {kind}",
                                      field=f"{field}.{name}")
        return TEXT if kind == "text" else ResponseFormat(type=kind)  # type: ignore[arg-type]
    if len(proto.schema_name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"at most {MAX_NAME_CHARS} characters", field=f"{field}.schema_name")
    if not proto.schema_json.strip():
        raise InvalidArgument("a json_schema response format needs its schema",
                              field=f"{field}.schema_json")
    if len(proto.schema_json) > MAX_SCHEMA_CHARS:
        raise InvalidArgument(f"at most {MAX_SCHEMA_CHARS} characters",
                              field=f"{field}.schema_json")
    try:
        schema = json.loads(proto.schema_json)
    except RecursionError:
        raise InvalidArgument(f"nested deeper than {MAX_SCHEMA_DEPTH} levels",
                              field=f"{field}.schema_json") from None
    except ValueError as exc:
        raise InvalidArgument(f"is not JSON: {exc}", field=f"{field}.schema_json") from None
    if not isinstance(schema, dict):
        raise InvalidArgument("must be a JSON object (a JSON Schema)",
                              field=f"{field}.schema_json")
    problem = _unbounded(schema)
    if problem:
        raise InvalidArgument(problem, field=f"{field}.schema_json")
    return ResponseFormat(type="json_schema", schema_json=proto.schema_json,
                          schema_name=proto.schema_name)


_COUNTED_KEYWORDS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties",
                     "minProperties")
_PATTERN_COUNT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


def _unbounded(schema: dict[str, Any]) -> str | None:
    """Why a grammar could not enforce the schema (a repetition count over MAX_SCHEMA_REPEAT,
    nesting deeper than MAX_SCHEMA_DEPTH), or None. Walks without recursion."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            return f"nested deeper than {MAX_SCHEMA_DEPTH} levels"
        if isinstance(node, dict):
            for keyword in _COUNTED_KEYWORDS:
                count = node.get(keyword)
                if isinstance(count, int | float) and count > MAX_SCHEMA_REPEAT:
                    return (f"{keyword} {count} is over {MAX_SCHEMA_REPEAT}: the grammar that "
                            "enforces a schema spells every repetition out")
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                counts = [int(n) for match in _PATTERN_COUNT.finditer(pattern)
                          for n in match.groups() if n]
                if counts and max(counts) > MAX_SCHEMA_REPEAT:
                    return (f"pattern repeats {max(counts)} times, over {MAX_SCHEMA_REPEAT}: the "
                            "grammar that enforces a schema spells every repetition out")
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    return None
