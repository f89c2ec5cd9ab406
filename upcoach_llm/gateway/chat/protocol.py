"""The OpenAI chat completions request, response and stream chunk, as pydantic models.

Requests are validated strictly (a string where a number belongs is a 400 naming the field) and
within the limits of upcoach_llm/common/limits.py, so that every value fits its protobuf field and
the services' own checks. Every OpenAI parameter is either honoured (sampling, penalties,
``response_format``, ``logprobs``) or refused with a 400 naming it: an unknown field, and a
supported-by-OpenAI one whose meaning the gateway cannot honour (tools, ``logit_bias``, audio,
``n`` > 1, ...; the ``Refused`` fields below). Fields that change nothing in the reply and that
clients routinely send (``user``, ``metadata``, ``store: false``, ``stream_options``) are
accepted. Message objects keep ignoring unknown keys, so that a reply's message (with its
``refusal``, ``tool_calls: null``, ...) can be sent back as history. Fields that are a string or a
list are checked by a field validator, so that a bad value is reported at the field rather than at
one member of the union.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from upcoach_llm.api.names import FinishReasonName
from upcoach_llm.common.limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_MESSAGES,
    MAX_PENALTY,
    MAX_PROMPT_CHARS,
    MAX_SCHEMA_CHARS,
    MAX_STOP_LENGTH,
    MAX_STOP_SEQUENCES,
    MAX_TOP_LOGPROBS,
)
from upcoach_llm.gateway.http.text import (
    BLANK_CONTENT_ROLE,
    NOT_BLANK,
    Name,
    Schema,
    described,
    problem,
    refuse,
    text,
    unless_blank_role,
)

RoleName = Literal["system", "developer", "user", "assistant"]
PartText = described(MAX_PROMPT_CHARS)
Content = described(MAX_PROMPT_CHARS)
StopSequence = described(MAX_STOP_LENGTH, min_length=1)
SchemaName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$",
                                  description="letters, digits, _ and -, at most 64")]
SchemaDescription = text(MAX_SCHEMA_CHARS)


class TextPart(BaseModel):
    """A text content part (``{"type": "text", "text": ...}``)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: PartText


Parts = Annotated[list[TextPart], Schema(minItems=1)]
_NOT_BLANK_CONTENT = {"anyOf": [
    {"type": "string", "pattern": NOT_BLANK},
    {"type": "array",
     "contains": {"type": "object", "properties": {"text": {"pattern": NOT_BLANK}}}},
]}


class ChatMessageIn(BaseModel):
    """One message of the conversation; ``developer`` is treated as ``system``."""

    model_config = ConfigDict(extra="ignore", strict=True, json_schema_extra=unless_blank_role(
        {"properties": {"content": _NOT_BLANK_CONTENT}}))

    role: RoleName
    content: Content | Parts = Field(
        description="the text, or text parts joined in order; not blank but for an assistant's")
    name: Name | None = Field(default=None, description="not supported: null or absent")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None:
            raise refuse("message names are not supported: the model would not be told who "
                         "spoke")
        return value

    @field_validator("content")
    @classmethod
    def _content(cls, value: str | list[TextPart], info: ValidationInfo,
                 ) -> str | list[TextPart]:
        if isinstance(value, list) and not value:
            raise refuse("must have at least one text part")
        joined = value if isinstance(value, str) else "".join(part.text for part in value)
        reason = problem(joined, max_length=MAX_PROMPT_CHARS,
                         blank=info.data.get("role") == BLANK_CONTENT_ROLE)
        if reason:
            raise refuse(reason)
        return value

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def role_name(self) -> str:
        return "system" if self.role == "developer" else self.role


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    include_usage: bool = Field(
        default=False, description="one last chunk, without choices, carries the usage")
    include_obfuscation: bool | None = Field(
        default=None, description="accepted; chunks are never padded here")


class JsonSchemaSpec(BaseModel):
    """``response_format.json_schema``: the schema the reply must be valid against."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: SchemaName
    schema_: dict[str, Any] = Field(alias="schema", description=(
        f"a JSON Schema object, at most {MAX_SCHEMA_CHARS} characters as compact JSON"))
    strict: bool | None = Field(default=None,
                                description="accepted: the schema is always enforced")
    description: SchemaDescription | None = None

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(schema_text(value))
        if size > MAX_SCHEMA_CHARS:
            raise refuse(f"must be at most {MAX_SCHEMA_CHARS} characters as JSON, got {size}")
        return value


class ResponseFormat(BaseModel):
    """``{"type": "text"}``, ``{"type": "json_object"}`` or ``{"type": "json_schema",
    "json_schema": {"name", "schema", ...}}``: the reply is free text, one JSON object, or JSON
    valid against the schema (enforced by the engine's grammar or the backend's guided
    decoding)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = Field(
        default=None, validate_default=True,
        description="required with type json_schema, refused with the others")

    @field_validator("json_schema")
    @classmethod
    def _with_its_type(cls, value: JsonSchemaSpec | None,
                       info: ValidationInfo) -> JsonSchemaSpec | None:
        kind = info.data.get("type")
        if kind == "json_schema" and value is None:
            raise refuse("required with type json_schema")
        if kind in ("text", "json_object") and value is not None:
            raise refuse(f"only allowed with type json_schema, not {kind}")
        return value


def schema_text(schema: dict[str, Any]) -> str:
    """The schema as the services get it: compact JSON, in the caller's key order, ASCII-escaped
    (so that a lone surrogate in it cannot break protobuf)."""
    return json.dumps(schema, separators=(",", ":"))


def _neutral(*allowed: Any) -> Any:
    """A before-validator for a refused field: absent, null or one of allowed passes."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or any(value == ok and type(value) is type(ok) for ok in allowed):
            return value
        raise refuse(REFUSED[info.field_name or ""])

    return BeforeValidator(check)


# The OpenAI parameters this gateway cannot honour, and why: a request that sets one (to anything
# but null or the neutral value its type allows) is a 400 naming it.
REFUSED = {
    "tools": "tool and function calling are not supported",
    "functions": "tool and function calling are not supported",
    "tool_choice": "tool calling is not supported; only \"none\" is accepted",
    "function_call": "function calling is not supported; only \"none\" is accepted",
    "parallel_tool_calls": "tool calling is not supported",
    "logit_bias": "token biases are not supported; only {} is accepted",
    "audio": "audio output is not supported",
    "modalities": "only [\"text\"] output is supported",
    "prediction": "predicted outputs are not supported",
    "reasoning_effort": "the models served here have no reasoning effort setting",
    "verbosity": "the models served here have no verbosity setting",
    "web_search_options": "web search is not supported",
    "service_tier": "only the \"auto\" and \"default\" service tiers exist here",
    "store": "completions are not stored; only false is accepted",
}


def _refused(annotation: Any, *neutral: Any) -> Any:
    """The type of a refused field: null or its neutral values (the JSON Schema says so too)."""
    return Annotated[annotation, _neutral(*neutral)]


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "mistral", "max_tokens": 100,
         "messages": [{"role": "user", "content": "Give me a motivation tip"}]},
        {"messages": [{"role": "system", "content": "You are a concise coach."},
                      {"role": "user", "content": "One habit tip, please"}],
         "temperature": 0, "stream": True, "stream_options": {"include_usage": True}},
        {"messages": [{"role": "user", "content": "Three habits as a JSON list"}],
         "response_format": {"type": "json_object"}, "logprobs": True, "top_logprobs": 2}]})

    model: Name | None = Field(
        default=None, description="Catalog model; empty lets the router pick (the response "
                                  "names the model actually served after fallbacks)")
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(
        default=None, ge=1, le=INT32_MAX,
        description="the service's own limit (GENERATION_MAX_TOKENS_LIMIT) may be lower")
    max_completion_tokens: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="takes precedence over max_tokens")
    temperature: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=2)
    top_p: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=1,
                                description="0: only the likeliest token")
    frequency_penalty: float | None = Field(default=None, allow_inf_nan=False,
                                            ge=-MAX_PENALTY, le=MAX_PENALTY)
    presence_penalty: float | None = Field(default=None, allow_inf_nan=False,
                                           ge=-MAX_PENALTY, le=MAX_PENALTY)
    stop: StopSequence | Annotated[
        list[StopSequence], Schema(maxItems=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    response_format: ResponseFormat | None = None
    logprobs: bool | None = Field(
        default=None, description="return each token's log probability (choices[].logprobs); "
                                  "a 400 where the serving backend cannot")
    top_logprobs: int | None = Field(
        default=None, ge=0, le=MAX_TOP_LOGPROBS,
        description="with logprobs: true, the most likely alternatives at each position")
    stream: bool | None = Field(default=None, description="null: false")
    stream_options: StreamOptions | None = Field(default=None,
                                                 description="only with stream: true")
    n: int | None = Field(default=None, ge=1, le=1, description="only 1 (null: 1)")
    feature: Name | None = Field(
        default=None, description="UpCoach feature (e.g. habit_tips) that picks the model "
                                  "when model is empty")
    user: Name | None = Field(default=None, description="accepted; not used")
    safety_identifier: Name | None = Field(default=None, description="accepted; not used")
    prompt_cache_key: Name | None = Field(default=None, description="accepted; not used")
    metadata: dict[str, str] | None = Field(default=None, max_length=16,
                                            description="accepted; not used")
    store: _refused(Literal[False] | None, False) = Field(
        default=None, description="only false: completions are not stored")
    service_tier: _refused(Literal["auto", "default"] | None, "auto", "default") = None
    tools: _refused(Annotated[list[Any], Schema(maxItems=0)] | None, []) = Field(
        default=None, description="not supported: absent, null or empty")
    functions: _refused(Annotated[list[Any], Schema(maxItems=0)] | None, []) = Field(
        default=None, description="not supported: absent, null or empty")
    tool_choice: _refused(Literal["none"] | None, "none") = None
    function_call: _refused(Literal["none"] | None, "none") = None
    parallel_tool_calls: _refused(None) = Field(default=None, description="not supported")
    logit_bias: _refused(Annotated[dict[str, Any], Schema(maxProperties=0)] | None, {}) = Field(
        default=None, description="not supported: absent, null or empty")
    modalities: _refused(list[Literal["text"]] | None, ["text"]) = None
    audio: _refused(None) = Field(default=None, description="not supported")
    prediction: _refused(None) = Field(default=None, description="not supported")
    reasoning_effort: _refused(None) = Field(default=None, description="not supported")
    verbosity: _refused(None) = Field(default=None, description="not supported")
    web_search_options: _refused(None) = Field(default=None, description="not supported")

    @field_validator("stream_options")
    @classmethod
    def _stream_options(cls, value: StreamOptions | None,
                        info: ValidationInfo) -> StreamOptions | None:
        if value is not None and info.data.get("stream") is not True:
            raise refuse("only allowed with stream: true")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("logprobs") is not True:
            raise refuse("only allowed with logprobs: true")
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        sequences = [value] if isinstance(value, str) else value or []
        if len(sequences) > MAX_STOP_SEQUENCES:
            raise refuse(f"at most {MAX_STOP_SEQUENCES} sequences")
        for index, sequence in enumerate(sequences):
            reason = problem(sequence, max_length=MAX_STOP_LENGTH, min_length=1)
            if reason:
                raise refuse(reason if isinstance(value, str) else f"[{index}] {reason}")
        return value

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = Field(default=None, description="always null: the models here never refuse "
                                                    "in OpenAI's structured way")


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = Field(description="the token's UTF-8 bytes")


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = Field(description="the token's UTF-8 bytes")
    top_logprobs: list[TopLogprob] = Field(
        description="the most likely tokens at this position (top_logprobs of them)")


class ChoiceLogprobs(BaseModel):
    """With ``logprobs: true``: the tokens of the reply (of this chunk, when streamed)."""

    content: list[TokenLogprob] | None


class Choice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: FinishReasonName | None
    logprobs: ChoiceLogprobs | None = Field(default=None,
                                            description="set when logprobs: true was asked")


class ChatCompletionResponse(BaseModel):
    """The whole reply; ``model`` is the model actually served."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: ChoiceLogprobs | None = Field(
        default=None, description="with logprobs: true, the tokens of this chunk's text")
    finish_reason: FinishReasonName | None = None


class ChatCompletionChunk(BaseModel):
    """One SSE event of a streamed reply (``data: {chunk}``); the stream ends ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = Field(default=None, description=(
        "only with stream_options.include_usage: null on every chunk but the last, whose "
        "choices are empty"))
