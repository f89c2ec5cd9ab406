"""The guide's health response."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    """``status`` is ok when every part is healthy, degraded otherwise (HTTP 200 either way)."""

    status: Literal["ok", "degraded"]
    timestamp: str = Field(description="ISO-8601 UTC time of the check")
    services: dict[str, Literal["healthy", "unhealthy"]] = Field(
        description="each gRPC service, redis, and each configured backend by name")
    details: dict[str, str] | None = Field(
        default=None, description="why each unhealthy part is unhealthy; absent when all are ok")
