"""API keys from LLM_API_KEY, sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Keys are compared in constant time (hmac.compare_digest over their SHA-256 digests, against every
configured key) and never logged: a caller is known by ``key:<first 16 hex of the key's hash>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


class AuthError(Exception):
    """The request carries no key, or a key that is not configured."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries; headers are looked up case-insensitively by the caller's map."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def key_identity(key: str) -> str:
    """A stable, non-reversible name for a key, for rate-limit buckets and logs."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


class ApiKeyAuth:
    """Checks presented keys against the configured ones; with none configured, auth is off."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """The caller's key identity, or None when auth is off; AuthError when refused."""
        if not self._digests:
            return None
        key = presented_key(headers)
        if key is None:
            raise AuthError("missing API key: send Authorization: Bearer <key> or X-API-Key")
        digest = hashlib.sha256(key.encode()).digest()
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise AuthError("invalid API key")
        return key_identity(key)
