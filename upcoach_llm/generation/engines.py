"""Builds the chat engines for the backends in config/backends.yaml.

Each backend type brings its chat engine (upcoach_llm/engines/types/): embedded → llama.cpp in
this process, ollama → Ollama's /api/chat, openai → an OpenAI-compatible server (vLLM). A type
without one is skipped with a warning. Only the catalog's chat models count: a backend that
lists nothing but embedding models gets no chat engine.
"""

from __future__ import annotations

from upcoach_llm.common.backends import BackendsFile
from upcoach_llm.common.catalog import ModelsFile
from upcoach_llm.engines.base import ChatEngine
from upcoach_llm.engines.types import engines_for


def build_engines(catalog: ModelsFile, backends: BackendsFile) -> dict[str, ChatEngine]:
    """One chat engine per backend that lists chat models and whose type has a chat engine."""
    return {backend.name: engine
            for backend, _, engine in engines_for(catalog, backends, "chat")}
