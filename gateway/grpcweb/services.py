"""The Connect apps (placeholder until the proxies land)."""

from __future__ import annotations

from starlette.types import ASGIApp

from gateway.deps import Dependencies


def build_apps(deps: Dependencies) -> dict[str, ASGIApp]:
    return {}
