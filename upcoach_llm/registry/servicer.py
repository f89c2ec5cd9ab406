"""ModelRegistryService handlers: catalog listing, availability per backend, edge models, pulls
(counted by backend and result)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc
from prometheus_client import Counter

from upcoach_llm.api import model_registry_pb2, model_registry_pb2_grpc
from upcoach_llm.api.names import (
    BACKEND_TYPE_VALUES,
    MODEL_KIND_NAMES,
    MODEL_KIND_VALUES,
    PLATFORM_NAMES,
)
from upcoach_llm.common.backends import BackendConfig, BackendsFile
from upcoach_llm.common.catalog import EdgeModelsFile, ModelEntry, ModelsFile
from upcoach_llm.common.errors import FailedPrecondition, InvalidArgument, NotFound
from upcoach_llm.common.fields import check_name
from upcoach_llm.common.logging import get_logger
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.probes import probe_backend
from upcoach_llm.registry.edge import select_edge_models
from upcoach_llm.registry.pull import can_pull, puller_for

log = get_logger(__name__)

PULLS = Counter("upcoach_registry_pulls",
                "Model pulls, by backend and result (ok, error, cancelled)", ["backend", "result"])


class ModelRegistryServicer(model_registry_pb2_grpc.ModelRegistryServiceServicer):
    """Answers from the catalog files read at start-up and live backend probes."""

    def __init__(self, catalog: ModelsFile, edge: EdgeModelsFile, backends: BackendsFile,
                 probe_timeout: float) -> None:
        self._catalog = catalog
        self._edge = edge
        self._backends = backends
        self._probe_timeout = probe_timeout

    async def _probe_all(self) -> dict[str, EngineHealth]:
        results = await asyncio.gather(
            *(probe_backend(b, self._probe_timeout) for b in self._backends.backends))
        return {b.name: r for b, r in zip(self._backends.backends, results, strict=True)}

    def _model_proto(self, entry: ModelEntry,
                     health: dict[str, EngineHealth]) -> model_registry_pb2.Model:
        availability = []
        for backend in self._backends.backends:
            if not _hosts(backend, entry):
                continue
            state = health[backend.name]
            available = state.healthy and entry.name in state.models
            if available:
                detail = ""
            elif not state.healthy:
                detail = f"backend down: {state.detail}"
            else:
                detail = f"not installed on {backend.name}"
            availability.append(model_registry_pb2.BackendAvailability(
                backend=backend.name, type=BACKEND_TYPE_VALUES[backend.type], available=available,
                detail=detail))
        return model_registry_pb2.Model(
            name=entry.name, description=entry.description, required=entry.required,
            use_cases=entry.use_cases, kind=MODEL_KIND_VALUES[entry.kind], size_bytes=entry.size,
            availability=availability, served=any(a.available for a in availability))

    async def ListModels(self, request: model_registry_pb2.ListModelsRequest,
                         context: grpc.aio.ServicerContext,
                         ) -> model_registry_pb2.ListModelsResponse:
        wanted = MODEL_KIND_NAMES.get(request.kind)
        if wanted is None and request.kind != model_registry_pb2.MODEL_KIND_UNSPECIFIED:
            kinds = ", ".join(f"MODEL_KIND_{name.upper()}" for name in MODEL_KIND_NAMES.values())
            raise InvalidArgument(f"unknown kind {request.kind} ({kinds}, or none for every "
                                  "model)", field="kind")
        health = await self._probe_all()
        models = [self._model_proto(m, health) for m in self._catalog.models
                  if wanted is None or m.kind == wanted]
        return model_registry_pb2.ListModelsResponse(models=models)

    async def GetModel(self, request: model_registry_pb2.GetModelRequest,
                       context: grpc.aio.ServicerContext) -> model_registry_pb2.GetModelResponse:
        entry = self._require(request.name)
        health = await self._probe_all()
        return model_registry_pb2.GetModelResponse(model=self._model_proto(entry, health))

    async def ListEdgeModels(
            self, request: model_registry_pb2.ListEdgeModelsRequest,
            context: grpc.aio.ServicerContext) -> model_registry_pb2.ListEdgeModelsResponse:
        platform = PLATFORM_NAMES.get(request.platform)
        if platform is None:
            raise InvalidArgument("required, PLATFORM_IOS or PLATFORM_ANDROID", field="platform")
        selection = select_edge_models(self._edge, platform, request.ram_gb)
        return model_registry_pb2.ListEdgeModelsResponse(
            models=[_edge_proto(m) for m in selection.models],
            default_model_id=selection.default_id)

    async def PullModel(self, request: model_registry_pb2.PullModelRequest,
                        context: grpc.aio.ServicerContext,
                        ) -> AsyncIterator[model_registry_pb2.PullModelResponse]:
        entry = self._require(request.name)
        backend = self._pull_backend(entry, request.backend)
        log.info("pull started", extra={"fields": {"model": entry.name, "backend": backend.name}})
        result = "cancelled"
        try:
            # Closed here, not by the garbage collector, when the caller cancels mid-pull.
            async with aclosing(puller_for(backend)(backend, entry.name)) as steps:
                async for progress in steps:
                    yield model_registry_pb2.PullModelResponse(
                        status=progress.status, digest=progress.digest,
                        completed=progress.completed, total=progress.total, done=progress.done)
            result = "ok"
        except Exception:
            result = "error"
            raise
        finally:
            PULLS.labels(backend.name, result).inc()
        log.info("pull finished", extra={"fields": {"model": entry.name, "backend": backend.name}})

    def _require(self, name: str) -> ModelEntry:
        if not name:
            raise InvalidArgument("a model name is required", field="name")
        entry = self._catalog.get(check_name("name", name))
        if entry is None:
            known = ", ".join(m.name for m in self._catalog.models)
            raise NotFound(f"{name!r} is not in the catalog (known: {known})", field="name")
        return entry

    def _pull_backend(self, entry: ModelEntry, name: str) -> BackendConfig:
        if name:
            backend = self._backends.get(check_name("backend", name))
            if backend is None:
                known = ", ".join(b.name for b in self._backends.backends)
                raise NotFound(f"{name!r} is not configured (configured: {known})",
                               field="backend")
            return backend
        pullers = [b for b in self._backends.backends if can_pull(b, entry.name)]
        # One that serves the model once pulled comes first.
        chosen = [b for b in pullers if entry.name in b.models] or pullers
        if chosen:
            return chosen[0]
        raise FailedPrecondition(
            f"no configured backend can pull {entry.name}: configure an Ollama backend "
            "(OLLAMA_URL) to pull it")


def _hosts(backend: BackendConfig, entry: ModelEntry) -> bool:
    """Whether a backend serves the model once it has it: it lists it (OLLAMA_MODELS for Ollama,
    which could pull any model but is routed only those)."""
    return entry.name in backend.models


def _edge_proto(entry) -> model_registry_pb2.EdgeModel:
    return model_registry_pb2.EdgeModel(
        id=entry.id, name=entry.name, description=entry.description, platforms=entry.platforms,
        formats=[model_registry_pb2.EdgeModelFormat(
            format=name, url=spec.url, size_mb=spec.size_mb, quantization=spec.quantization or "",
            sha256=spec.sha256 or "") for name, spec in entry.formats.items()],
        capabilities=entry.capabilities, max_context=entry.max_context,
        min_device_ram_gb=entry.min_device_ram_gb)
