"""The operator's key (LLM_ADMIN_KEY): who may see internal detail such as /health's ``details``.

Sent like an API key (``Authorization: Bearer`` or ``X-API-Key``) and checked by the same
constant-time comparison; it grants no API access by itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from upcoach_llm.gateway.security.auth import ApiKeyAuth, AuthError


class AdminKey:
    """Whether a request presents the admin key; never, when none is configured."""

    def __init__(self, key: str | None) -> None:
        self._auth = ApiKeyAuth((key,)) if key else None

    def presented_by(self, headers: Mapping[str, str]) -> bool:
        if self._auth is None:
            return False
        try:
            self._auth.authenticate(headers)
        except AuthError:
            return False
        return True
