"""The paths that speak Ollama's API, and so answer errors in Ollama's shape ``{"error": "..."}``.

The one list of them: errors.py and openapi.py choose the error shape by it, router.py serves
them. ``/api/embeddings`` is not in it: it speaks OpenAI's shape unless the body is Ollama's
legacy ``{"model", "prompt"}``, which its handler renders itself (router.py).
"""

from __future__ import annotations

CHAT = "/api/chat"
GENERATE = "/api/generate"
TAGS = "/api/tags"
SHOW = "/api/show"
PS = "/api/ps"
EMBED = "/api/embed"
EMBEDDINGS = "/api/embeddings"
VERSION = "/api/version"

# The Ollama API release whose shapes these paths follow (structured `format`, /api/embed,
# logprobs, which came in 0.12.11); tools that probe /api/version read it to choose features.
API_VERSION = "0.12.11"

OLLAMA_PATHS = frozenset({CHAT, GENERATE, TAGS, SHOW, PS, EMBED, VERSION})


def speaks_ollama(path: str) -> bool:
    """Whether an error on this path is answered as ``{"error": "<message>"}``."""
    return path in OLLAMA_PATHS
