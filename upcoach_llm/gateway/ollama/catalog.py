"""/api/tags, /api/show and /api/ps from the model-registry service's catalog.

What Ollama reads from GGUF files the catalog does not know, so some fields are approximate:

- ``/api/tags`` lists every catalog model (each is answered, by itself or a fallback);
  ``modified_at`` is when this gateway started, ``digest`` a stable sha256 of the name and size
  (not of the weights), ``details`` empty but for the ``format`` (gguf, onnx) of a model an
  embedded engine serves;
- ``/api/show`` has no Modelfile, template or parameters (empty strings); ``model_info`` holds
  what the catalog says (``general.name``, ``general.description``, ``upcoach.*``: use cases,
  whether it is served now and on which backends); ``capabilities`` is ``completion`` or
  ``embedding`` by the model's kind;
- ``/api/ps`` lists the models an embedded engine of this stack serves now (the registry probes
  the backends; embedded engines load their models at start-up and keep them), with
  ``size_vram`` 0 (they run on the CPU) and an ``expires_at`` that never comes; models on
  Ollama or vLLM backends are not listed, their own ``/api/ps`` says what they hold.
"""

from __future__ import annotations

import hashlib
from typing import Any

from upcoach_llm.api import common_pb2, model_registry_pb2
from upcoach_llm.api.names import MODEL_KIND_NAMES
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.fields import MODELS
from upcoach_llm.gateway.ollama.render import created_at
from upcoach_llm.gateway.upstream import call_unary

NEVER = "9999-12-31T23:59:59Z"
_CAPABILITIES = {"chat": ["completion"], "embedding": ["embedding"]}


class Catalog:
    """Reads the registry and renders Ollama's model listings."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps
        self._started = created_at()

    @property
    def _timeout(self) -> float:
        return self._deps.settings.health_timeout_s * 5

    async def _models(self) -> list[model_registry_pb2.Model]:
        reply = await call_unary(self._deps.upstream.registry.ListModels(
            model_registry_pb2.ListModelsRequest(), timeout=self._timeout))
        return list(reply.models)

    async def tags(self) -> dict[str, Any]:
        return {"models": [self._listed(m) for m in await self._models()]}

    async def ps(self) -> dict[str, Any]:
        return {"models": [{**self._listed(m, modified=False), "expires_at": NEVER,
                            "size_vram": 0, "context_length": 0}
                           for m in await self._models() if loaded(m)]}

    async def show(self, name: str) -> dict[str, Any]:
        reply = await call_unary(self._deps.upstream.registry.GetModel(
            model_registry_pb2.GetModelRequest(name=name), timeout=self._timeout), MODELS)
        model = reply.model
        kind = MODEL_KIND_NAMES.get(model.kind, "")
        return {"modelfile": "", "parameters": "", "template": "", "details": details(model),
                "model_info": {
                    "general.name": model.name, "general.description": model.description,
                    "upcoach.kind": kind, "upcoach.use_cases": list(model.use_cases),
                    "upcoach.required": model.required, "upcoach.served": model.served,
                    "upcoach.backends": [a.backend for a in model.availability
                                         if a.available]},
                "capabilities": _CAPABILITIES.get(kind, []), "modified_at": self._started}

    def _listed(self, model: model_registry_pb2.Model, *, modified: bool = True
                ) -> dict[str, Any]:
        listed: dict[str, Any] = {"name": model.name, "model": model.name}
        if modified:
            listed["modified_at"] = self._started
        listed |= {"size": model.size_bytes, "digest": digest(model), "details": details(model)}
        return listed


def loaded(model: model_registry_pb2.Model) -> bool:
    """Whether an embedded engine of this stack serves the model now."""
    return any(a.available and a.type == common_pb2.BACKEND_TYPE_EMBEDDED
               for a in model.availability)


def digest(model: model_registry_pb2.Model) -> str:
    return hashlib.sha256(f"{model.name}\0{model.size_bytes}".encode()).hexdigest()


def details(model: model_registry_pb2.Model) -> dict[str, Any]:
    """Ollama's details; only the format of an embedded model is known (GGUF chat, ONNX
    embeddings)."""
    fmt = ""
    if loaded(model):
        fmt = "gguf" if MODEL_KIND_NAMES.get(model.kind) == "chat" else "onnx"
    return {"parent_model": "", "format": fmt, "family": "", "families": [],
            "parameter_size": "", "quantization_level": ""}

