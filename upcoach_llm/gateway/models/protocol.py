"""Response shapes of the model endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CatalogModel(BaseModel):
    """One model as the guide lists it; size in bytes (0 when unknown)."""

    id: str
    name: str
    size: int
    available: bool = Field(description="a healthy configured backend has it now (pulled on "
                                        "Ollama, listed by vLLM, its files packaged for the "
                                        "embedded engine)")


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "upcoach"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class CatalogResponse(OpenAIModelList):
    """The guide's ``{"models": [...]}``, plus OpenAI's ``object``/``data`` so that OpenAI
    clients pointed at the /api base URL can list models too."""

    models: list[CatalogModel]
