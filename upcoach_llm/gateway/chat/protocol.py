"""The OpenAI chat completions request, response and stream chunk, as pydantic models.

Requests are validated strictly (a string where a number belongs is a 400 naming the field) and
within the limits of upcoach_llm/common/limits.py, so that every value fits its protobuf field and
the services' own checks; fields OpenAI clients send that change nothing here (penalties,
logprobs) are accepted and ignored, while ones whose meaning the gateway cannot honour (tools,
n > 1) are refused. Fields that are a string or a list are checked by a field validator, so that
a bad value is reported at the field rather than at one member of the union.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from upcoach_llm.api.names import FinishReasonName
from upcoach_llm.common.limits import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_MESSAGES,
    MAX_PROMPT_CHARS,
    MAX_STOP_LENGTH,
    MAX_STOP_SEQUENCES,
)
from upcoach_llm.gateway.http.text import NOT_BLANK, Name, Schema, described, problem, refuse

RoleName = Literal["system", "developer", "user", "assistant"]
PartText = described(MAX_PROMPT_CHARS)
Content = described(MAX_PROMPT_CHARS, blank=False)
StopSequence = described(MAX_STOP_LENGTH, min_length=1)


class TextPart(BaseModel):
    """A text content part (``{"type": "text", "text": ...}``)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: PartText


Parts = Annotated[list[TextPart], Schema(
    minItems=1, contains={"type": "object", "properties": {"text": {"pattern": NOT_BLANK}}})]


class ChatMessageIn(BaseModel):
    """One message of the conversation; ``developer`` is treated as ``system``."""

    model_config = ConfigDict(extra="ignore", strict=True)

    role: RoleName
    content: Content | Parts = Field(
        description="the text, or text parts joined in order; not blank")
    name: Name | None = None

    @field_validator("content")
    @classmethod
    def _content(cls, value: str | list[TextPart]) -> str | list[TextPart]:
        if isinstance(value, list) and not value:
            raise refuse("must have at least one text part")
        joined = value if isinstance(value, str) else "".join(part.text for part in value)
        reason = problem(joined, max_length=MAX_PROMPT_CHARS, blank=False)
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
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="ignore", strict=True, json_schema_extra={"examples": [
        {"model": "mistral", "max_tokens": 100,
         "messages": [{"role": "user", "content": "Give me a motivation tip"}]},
        {"messages": [{"role": "system", "content": "You are a concise coach."},
                      {"role": "user", "content": "One habit tip, please"}],
         "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}]})

    model: Name | None = Field(
        default=None, description="Catalog model; empty lets the router pick (the response "
                                  "names the model actually served after fallbacks)")
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(
        default=None, ge=1, le=INT32_MAX,
        description="the service's own limit (GENERATION_MAX_TOKENS_LIMIT) may be lower")
    max_completion_tokens: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="takes precedence over max_tokens")
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: StopSequence | Annotated[
        list[StopSequence], Schema(maxItems=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="only 1 is supported")
    feature: Name | None = Field(
        default=None, description="UpCoach feature (e.g. habit_tips) that picks the model "
                                  "when model is empty")
    user: Name | None = None
    tools: list[Any] | None = Field(default=None, max_length=0,
                                    description="not supported: absent, null or empty")
    functions: list[Any] | None = Field(default=None, max_length=0,
                                        description="not supported: absent, null or empty")

    @field_validator("tools", "functions", mode="before")
    @classmethod
    def _unsupported(cls, value: Any) -> Any:
        if isinstance(value, list) and value:
            raise refuse("tool and function calling are not supported")
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


class Choice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: FinishReasonName | None
    logprobs: None = None


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
    finish_reason: FinishReasonName | None = None


class ChatCompletionChunk(BaseModel):
    """One SSE event of a streamed reply (``data: {chunk}``); the stream ends ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
