"""The backend types (config/backends.yaml ``type``): one module each, registered in TYPES.

A type brings its chat and embedding engines, its probe, its puller and the facts the services
ask about it (base.BackendType). Adding one: its value in common.proto's BackendType (which
names the type), a module beside these, and its line in TYPES.
"""

from __future__ import annotations

from services.common.backends import BackendConfig
from services.engines.types import embedded, ollama, openai
from services.engines.types.base import BackendType

TYPES: dict[str, BackendType] = {t.name: t for t in (embedded.TYPE, ollama.TYPE, openai.TYPE)}


def type_of(backend: BackendConfig) -> BackendType:
    """The type of a configured backend (config admits the proto's BackendType names only)."""
    return TYPES[backend.type]
