"""Ollama's request and response shapes (docs/api.md of ollama/ollama), as pydantic models.

Requests are validated strictly, like the OpenAI ones: a wrong type, a value out of range or a
field Ollama does not define is a 400 naming the field (``options.top_k``, ``messages[1].images``).
What these models cannot do is refused, never silently ignored:

- honoured options: ``num_predict`` (max_tokens; -1 and -2, Ollama's "no limit", leave the
  service's default), ``temperature``, ``top_p``, ``seed``, ``stop`` (at most 4),
  ``frequency_penalty``, ``presence_penalty``; ``format`` ``"json"`` (a JSON object) or a JSON
  Schema (a reply valid against it).
- accepted and ignored, because they place or size the work and do not change the reply:
  ``num_ctx`` (each model runs with its configured context; a prompt that does not fit is a 400
  from the service, never silently truncated), ``num_batch``, ``num_gpu``, ``main_gpu``,
  ``num_thread``, ``num_keep``, ``use_mmap``, ``use_mlock``, ``numa``, ``low_vram``, ``f16_kv``,
  ``vocab_only``, ``logits_all``, ``embedding_only``, ``draft_num_predict``,
  ``penalize_newline`` (Ollama itself no longer reads it), ``mirostat_tau``/``mirostat_eta``
  (inert without mirostat), ``mirostat: 0``; ``keep_alive`` (a duration as Ollama reads it,
  else a 400; the embedded models stay loaded),
  ``truncate`` and ``shift`` (nothing is truncated or shifted: a prompt over the context is a
  400, a reply stops at the context with done_reason "length"); ``think: false``; a message's
  ``thinking`` (an earlier reply's reasoning, not sent to the model).
- refused with a 400 naming the field: ``top_k``, ``min_p``, ``typical_p``, ``tfs_z``,
  ``repeat_penalty``, ``repeat_last_n`` and ``mirostat`` other than 0 (the engines take no such
  parameter per request), ``think`` true or a level, non-empty ``tools``, ``images``,
  ``tool_calls``, ``role: "tool"``; on /api/generate ``raw: true``, ``suffix``, ``template`` and
  ``context``.

A model named with Ollama's default tag (``mistral:latest``) is the catalog's ``mistral``.

Fields that are a string or a list (``format``, ``input``) are checked by a field validator, so
that a bad value is reported at the field rather than at one member of the union.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    MAX_TOP_LOGPROBS,
)
from upcoach_llm.gateway.chat.protocol import schema_text
from upcoach_llm.gateway.embeddings.protocol import as_texts, checked_texts, no_token_arrays
from upcoach_llm.gateway.http.text import (
    BLANK_CONTENT_ROLE,
    NOT_BLANK,
    Name,
    Schema,
    described,
    refuse,
    text,
    unless_blank_role,
)

LATEST = ":latest"
Prompt = text(MAX_PROMPT_CHARS)
Content = text(MAX_PROMPT_CHARS)
StopSequence = text(MAX_STOP_LENGTH, min_length=1)
InputText = described(MAX_TEXT_CHARS, blank=False)


def _untagged(name: str) -> str:
    untagged = name.removesuffix(LATEST)
    if not untagged:
        raise refuse(f"a model name, not only the tag {LATEST!r}")
    return untagged


ModelName = Annotated[Name, AfterValidator(_untagged)]
"""A catalog model; Ollama's default tag is dropped (``mistral:latest`` is ``mistral``)."""


def _seed(seed: int | None) -> int | None:
    """Ollama's seed: a negative one (its default, -1) means a random draw, as no seed does."""
    return None if seed is None or seed < 0 else seed


_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
            "h": 3600.0}


def duration_seconds(value: str | int | float | None) -> float | None:
    """``keep_alive`` in seconds, read as Ollama reads it: a number of seconds, or a Go duration
    string ("5m", "1h30m", "0"); ValueError for anything else."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    if value in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION.fullmatch(value):
        raise ValueError(value)
    sign = -1.0 if value.startswith("-") else 1.0
    return sign * sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(value))


def _duration(value: str | int | float | None) -> str | int | float | None:
    try:
        duration_seconds(value)
    except ValueError:
        raise refuse('not a duration: a number of seconds or a Go duration such as "5m" or '
                     '"0"') from None
    return value


KeepAlive = Annotated[str | int | float | None, AfterValidator(_duration), Field(
    description="a duration (seconds, or \"5m\"); 0 unloads, anything else is accepted and "
                "ignored: the served models stay loaded")]
UNSUPPORTED = "{} is not supported by the models served here"


def _refused(value: Any, neutral: Any = None) -> Any:
    if value is not None and value != neutral:
        raise refuse("not supported here: the engines take no such parameter per request")
    return value


class OllamaOptions(BaseModel):
    """Ollama's ``options`` (Modelfile parameters); see the module docstring for which apply."""

    model_config = ConfigDict(extra="forbid", strict=True)

    num_predict: int | None = Field(default=None, ge=-2, le=INT32_MAX,
                                    description="max tokens; -1 or -2: the service's default")
    temperature: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=2)
    top_p: float | None = Field(default=None, allow_inf_nan=False, gt=0, le=1)
    seed: Annotated[int | None, AfterValidator(_seed)] = Field(
        default=None, ge=INT64_MIN, le=INT64_MAX,
        description="a fixed seed; a negative one (Ollama's default, -1) draws at random")
    stop: Annotated[list[StopSequence], Schema(maxItems=MAX_STOP_SEQUENCES)] | None = None
    frequency_penalty: float | None = Field(default=None, allow_inf_nan=False,
                                            ge=-MAX_PENALTY, le=MAX_PENALTY)
    presence_penalty: float | None = Field(default=None, allow_inf_nan=False,
                                           ge=-MAX_PENALTY, le=MAX_PENALTY)

    num_ctx: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    num_thread: int | None = None
    num_keep: int | None = None
    draft_num_predict: int | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    numa: bool | None = None
    low_vram: bool | None = None
    f16_kv: bool | None = None
    vocab_only: bool | None = None
    logits_all: bool | None = None
    embedding_only: bool | None = None
    penalize_newline: bool | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None

    top_k: int | None = Field(default=None, description="refused")
    min_p: float | None = Field(default=None, description="refused")
    typical_p: float | None = Field(default=None, description="refused")
    tfs_z: float | None = Field(default=None, description="refused")
    repeat_penalty: float | None = Field(default=None, description="refused")
    repeat_last_n: int | None = Field(default=None, description="refused")
    mirostat: int | None = Field(default=None, description="only 0 (off)")

    @field_validator("top_k", "min_p", "typical_p", "tfs_z", "repeat_penalty", "repeat_last_n")
    @classmethod
    def _unsupported(cls, value: Any) -> Any:
        return _refused(value)

    @field_validator("mirostat")
    @classmethod
    def _mirostat(cls, value: int | None) -> int | None:
        return _refused(value, neutral=0)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) > MAX_STOP_SEQUENCES:
            raise refuse(f"at most {MAX_STOP_SEQUENCES} sequences")
        return value

    def max_tokens(self) -> int | None:
        return self.num_predict if self.num_predict is not None and self.num_predict > 0 else None


class OllamaStreamed(BaseModel):
    """What /api/chat and /api/generate share: sampling, format, streaming (on by default)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: ModelName = Field(min_length=1, description="catalog model; the reply names the model "
                                                  "actually served after fallbacks")
    stream: bool = Field(default=True, description="NDJSON lines unless false")
    format: Literal["", "json"] | dict[str, Any] | None = Field(
        default=None, description='"json" for a JSON object, or a JSON Schema object')
    options: OllamaOptions | None = None
    keep_alive: KeepAlive = None
    think: bool | Literal["low", "medium", "high", "max"] | None = Field(
        default=None, description="only false: the served models do not think")
    truncate: bool | None = Field(default=None, description="accepted; nothing is truncated")
    shift: bool | None = Field(default=None, description="accepted; the context never shifts")
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        if value is None or value in ("", "json"):
            return value
        if isinstance(value, str):
            raise refuse('must be "json" or a JSON Schema object')
        if not isinstance(value, dict):
            raise refuse('must be "json" or a JSON Schema object')
        if len(schema_text(value)) > MAX_SCHEMA_CHARS:
            raise refuse(f"the schema must be at most {MAX_SCHEMA_CHARS} characters")
        return value

    @field_validator("think")
    @classmethod
    def _think(cls, value: bool | str | None) -> bool | str | None:
        if value not in (None, False):
            raise refuse(UNSUPPORTED.format("thinking"))
        return value

    def sampling_options(self) -> OllamaOptions:
        return self.options or OllamaOptions()


class OllamaMessageIn(BaseModel):
    """One message of an Ollama chat."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=unless_blank_role(
        {"required": ["content"], "properties": {"content": {"pattern": NOT_BLANK}}}))

    role: Literal["system", "user", "assistant", "tool"]
    content: Content = Field(default="", validate_default=True, description=(
        "not blank but for an assistant's, which may be empty or absent (absent reads as empty, "
        "as Ollama's server reads it)"))
    thinking: str | None = Field(default=None, description="accepted, not sent to the model")
    images: list[Any] | None = Field(default=None, max_length=0, description="not supported")
    tool_calls: list[Any] | None = Field(default=None, max_length=0, description="not supported")
    tool_name: Name | None = None
    tool_call_id: Name | None = None

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value == "tool":
            raise refuse(UNSUPPORTED.format("tool calling"))
        return value

    @field_validator("content")
    @classmethod
    def _content(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip() and info.data.get("role") != BLANK_CONTENT_ROLE:
            raise refuse("must not be blank")
        return value

    @field_validator("images", "tool_calls", mode="before")
    @classmethod
    def _empty(cls, value: Any, info: Any) -> Any:
        if isinstance(value, list) and value:
            raise refuse(UNSUPPORTED.format(info.field_name.replace("_", " ")))
        return value


class OllamaChatRequest(OllamaStreamed):
    """POST /api/chat."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "mistral", "messages": [{"role": "user", "content": "One habit tip, please"}],
         "stream": False, "options": {"num_predict": 64, "temperature": 0}}]})

    messages: list[OllamaMessageIn] = Field(default_factory=list, max_length=MAX_MESSAGES,
                                      description="empty: only checks the model (done_reason "
                                                  "load)")
    tools: list[Any] | None = Field(default=None, max_length=0,
                                    description="not supported: absent, null or empty")

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        if isinstance(value, list) and value:
            raise refuse(UNSUPPORTED.format("tool calling"))
        return value


class OllamaGenerateRequest(OllamaStreamed):
    """POST /api/generate: ``prompt`` (and ``system``) become a one- or two-message chat."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "mistral", "prompt": "Give me a motivation tip", "stream": False,
         "options": {"num_predict": 64}}]})

    prompt: Prompt | None = Field(default=None, description="empty: only checks the model")
    system: Prompt | None = None
    suffix: str | None = Field(default=None, max_length=0, description="not supported")
    template: str | None = Field(default=None, max_length=0, description="not supported")
    context: list[Any] | None = Field(default=None, max_length=0, description="not supported")
    raw: bool | None = Field(default=None, description="only false")
    images: list[Any] | None = Field(default=None, max_length=0, description="not supported")

    @field_validator("suffix", "template", "context", "images", mode="before")
    @classmethod
    def _unsupported(cls, value: Any, info: Any) -> Any:
        if isinstance(value, (str, list)) and value:
            raise refuse(UNSUPPORTED.format(info.field_name))
        return value

    @field_validator("raw")
    @classmethod
    def _raw(cls, value: bool | None) -> bool | None:
        if value:
            raise refuse(UNSUPPORTED.format("raw prompts (the chat template always applies)"))
        return value


class OllamaEmbedRequest(BaseModel):
    """POST /api/embed."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "nomic-embed-text", "input": ["Drink water", "Walk ten minutes"]}]})

    model: ModelName = Field(min_length=1)
    input: InputText | Annotated[list[InputText], Schema(minItems=1, maxItems=MAX_TEXTS)] = Field(
        description=f"a text or a list of texts (at most {MAX_TEXTS}), none blank")
    truncate: bool | None = Field(default=None, description="true (the default): a text past "
                                                            "the model's window is cut; false is "
                                                            "refused")
    dimensions: int | None = Field(default=None, ge=1, le=INT32_MAX)
    options: dict[str, Any] | None = Field(default=None, description="accepted and ignored")
    keep_alive: KeepAlive = None

    @field_validator("input", mode="before")
    @classmethod
    def _no_tokens(cls, value: object) -> object:
        return no_token_arrays(value)

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        return checked_texts(value)

    @field_validator("truncate")
    @classmethod
    def _truncated(cls, value: bool | None) -> bool | None:
        if value is False:
            raise refuse("truncate: false is not supported: a text past the model's window is "
                         "cut, never refused")
        return value

    def texts(self) -> list[str]:
        return as_texts(self.input)


class OllamaEmbeddingsRequest(BaseModel):
    """POST /api/embeddings with Ollama's legacy body (one prompt, one vector)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "nomic-embed-text", "prompt": "Drink water after waking up"}]})

    model: ModelName = Field(min_length=1)
    prompt: text(MAX_TEXT_CHARS, blank=False)  # type: ignore[valid-type]
    options: dict[str, Any] | None = Field(default=None, description="accepted and ignored")
    keep_alive: KeepAlive = None


class OllamaShowRequest(BaseModel):
    """POST /api/show (``name`` is Ollama's older spelling of ``model``)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "mistral"}]})

    model: ModelName | None = None
    name: ModelName | None = None
    verbose: bool | None = None
    system: str | None = None
    template: str | None = None
    options: dict[str, Any] | None = None

    def model_name(self) -> str:
        return self.model or self.name or ""


class OllamaModelDetails(BaseModel):
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] = Field(default_factory=list)
    parameter_size: str = ""
    quantization_level: str = ""


class OllamaListedModel(BaseModel):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str = Field(description="a stable id derived from the name and size, not a "
                                    "content digest")
    details: OllamaModelDetails


class OllamaTagsResponse(BaseModel):
    """GET /api/tags: the catalog."""

    models: list[OllamaListedModel]


class OllamaRunningModel(BaseModel):
    name: str
    model: str
    size: int
    digest: str
    details: OllamaModelDetails
    expires_at: str
    size_vram: int
    context_length: int


class OllamaPsResponse(BaseModel):
    """GET /api/ps: the models loaded in this stack's embedded engines."""

    models: list[OllamaRunningModel]


class OllamaVersionResponse(BaseModel):
    """GET /api/version: the Ollama API release this gateway follows."""

    version: str


class OllamaShowResponse(BaseModel):
    modelfile: str
    parameters: str
    template: str
    details: OllamaModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class OllamaMetrics(BaseModel):
    """Durations in nanoseconds; on the last line of a stream and on a whole reply."""

    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class OllamaTopLogprob(BaseModel):
    token: str
    logprob: float


class OllamaLogprob(OllamaTopLogprob):
    top_logprobs: list[OllamaTopLogprob] | None = None


class OllamaMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class OllamaChatResponse(OllamaMetrics):
    """A reply of /api/chat, or one NDJSON line of its stream (``done`` true on the last)."""

    model: str
    created_at: str
    message: OllamaMessageOut
    done: bool
    done_reason: str | None = Field(default=None, description="stop, length, content_filter, "
                                                              "load or unload")
    logprobs: list[OllamaLogprob] | None = None


class OllamaGenerateResponse(OllamaMetrics):
    """A reply of /api/generate, or one NDJSON line of its stream."""

    model: str
    created_at: str
    response: str
    done: bool
    done_reason: str | None = None
    logprobs: list[OllamaLogprob] | None = None


class OllamaEmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]

