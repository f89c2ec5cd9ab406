"""The guide's health response, and the liveness and readiness answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    """``status``: ok when every part is healthy; degraded when a part is not but chat is still
    served (HTTP 200 either way); down when no chat can be served (HTTP 503, the /readyz rule)."""

    status: Literal["ok", "degraded", "down"]
    timestamp: str = Field(description="ISO-8601 UTC time of the check")
    services: dict[str, Literal["healthy", "unhealthy"]] = Field(
        description="each gRPC service, redis, and each configured backend by name")
    details: dict[str, str] | None = Field(
        default=None, description="why each unhealthy part is unhealthy (``chat`` when no chat "
                                  "can be served); only for a caller presenting LLM_ADMIN_KEY, "
                                  "absent when all are ok")


class LiveResponse(BaseModel):
    """The process runs and answers HTTP."""

    status: Literal["alive"] = "alive"


class ReadyResponse(BaseModel):
    """A chat can be served now."""

    status: Literal["ready"] = "ready"
