"""Request and response shapes of the embeddings and search endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings (OpenAI): text input only, no token arrays."""

    model_config = ConfigDict(extra="ignore", strict=True)

    input: str | list[str] = Field(description="a text or a list of texts (at most 256)")
    model: str | None = Field(default=None,
                              description="embedding model; empty means the default one")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise ValueError("at least one text is required")
        if len(texts) > 256:
            raise ValueError("at most 256 texts per request")
        if any(not t.strip() for t in texts):
            raise ValueError("texts must not be empty")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


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

    model_config = ConfigDict(extra="ignore", strict=True)

    query: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=50)
    category: str | None = Field(default=None, description="only items of this category")


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
