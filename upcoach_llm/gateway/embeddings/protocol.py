"""Request and response shapes of the embeddings and search endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from upcoach_llm.common.limits import (
    INT32_MAX,
    MAX_QUERY_CHARS,
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    MAX_TOP_K,
)
from upcoach_llm.gateway.http.text import Name, Schema, described, problem, refuse, text

InputText = described(MAX_TEXT_CHARS, blank=False)
QueryText = text(MAX_QUERY_CHARS, blank=False)


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings (OpenAI): text input only, no token arrays."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"input": ["Drink water after waking up", "Walk for ten minutes"],
         "encoding_format": "base64"}]})

    input: InputText | Annotated[list[InputText], Schema(minItems=1, maxItems=MAX_TEXTS)] = Field(
        description=f"a text or a list of texts (at most {MAX_TEXTS}), none blank")
    model: Name | None = Field(default=None,
                               description="embedding model; empty means the default one")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=INT32_MAX)
    user: Name | None = Field(default=None, description="accepted; not used")

    @field_validator("input", mode="before")
    @classmethod
    def _no_tokens(cls, value: object) -> object:
        return no_token_arrays(value)

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        return checked_texts(value)

    def texts(self) -> list[str]:
        return as_texts(self.input)


def no_token_arrays(value: object) -> object:
    """Refuses token ids (OpenAI's other input form; LangChain's OpenAIEmbeddings sends them
    unless told ``check_embedding_ctx_length=False``) with a message that says so."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, int | list) and not isinstance(item, bool) for item in items):
        raise refuse("token arrays are not supported: send the text (a string or a list of "
                     "strings)")
    return value


def checked_texts(value: str | list[str]) -> str | list[str]:
    """An ``input`` of one text or a list (OpenAI's and Ollama's /api/embed): 1 to MAX_TEXTS
    texts, none blank or longer than MAX_TEXT_CHARS; the refusal names the bad item."""
    texts = [value] if isinstance(value, str) else value
    if not texts:
        raise refuse("at least one text is required")
    if len(texts) > MAX_TEXTS:
        raise refuse(f"at most {MAX_TEXTS} texts per request")
    for index, one in enumerate(texts):
        reason = problem(one, max_length=MAX_TEXT_CHARS, blank=False)
        if reason:
            raise refuse(reason if isinstance(value, str) else f"[{index}] {reason}")
    return value


def as_texts(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 little-endian float32")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class SearchRequest(BaseModel):
    """POST /api/search: coaching content closest in meaning to the query."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"query": "morning routine", "top_k": 3, "category": "habits"}]})

    query: QueryText
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)
    category: Name | None = Field(default=None, description="only items of this category")


class SearchResult(BaseModel):
    id: str
    category: str
    title: str
    text: str
    tags: list[str]
    score: float


class SearchResponse(BaseModel):
    results: list[SearchResult]
    model: str
