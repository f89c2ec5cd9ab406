"""The Ollama engine: chat, embeddings and model management over Ollama's HTTP API.

Follows Ollama's documented API (docs/api.md): ``/api/chat`` streams NDJSON whose last object has
``done: true`` with ``prompt_eval_count`` and ``eval_count`` (the usage); ``/api/embed`` embeds a
batch; ``/api/tags`` lists what is installed; ``/api/pull`` and ``/api/create`` stream status
lines ending in ``success``. Sampling goes into ``options`` (temperature, top_p, num_predict,
stop, seed, frequency_penalty and presence_penalty when set, repeat_penalty from
GENERATION_REPEAT_PENALTY always, so Ollama's own default of 1.1 does not apply, plus num_ctx
from OLLAMA_NUM_CTX) and ``keep_alive`` (OLLAMA_KEEP_ALIVE). A JSON response format is Ollama's
``format``: ``"json"``, or the JSON schema itself. Log probabilities came to Ollama's API only in
0.12 and are not part of the API this engine follows (the contract double's): a request for them
is refused before anything is sent.

Ollama names carry a tag (``mistral`` is ``mistral:latest``); the backend's ``models`` map turns
them back into catalog names. A model that is not pulled is FailedPrecondition with the command
that installs it; a malformed line, an error object mid-stream or a stream that ends without its
``done`` line is UpstreamError.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    ServiceError,
    UpstreamError,
)
from upcoach_llm.engines.base import (
    ChatEngine,
    EmbeddingEngine,
    EmbeddingResult,
    EngineHealth,
    Finished,
    PullProgress,
    TextChunk,
)
from upcoach_llm.engines.remote_engine import RemoteLifecycle
from upcoach_llm.engines.remote_http import RemoteHttp
from upcoach_llm.engines.remote_settings import RemoteSettings
from upcoach_llm.engines.vectors import VectorShapeError, normalised_vectors

_NOT_FOUND = re.compile(r'model ["\']?(?P<name>[^"\']+?)["\']? not found')


def canonical(name: str) -> str:
    """Ollama's form of a model name: the tag is always there (``mistral`` → ``mistral:latest``)."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def pull_hint(name: str) -> str:
    """How to install a model on Ollama, for error messages."""
    return (f"pull it with `ollama pull {name}`, `python scripts/setup_models.py`, or the model "
            f"registry's PullModel")


class OllamaEngine(RemoteLifecycle, ChatEngine, EmbeddingEngine):
    """One Ollama server; chat and embeddings share its HTTP client."""

    def __init__(self, backend: BackendConfig, settings: RemoteSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or RemoteSettings()
        self.http = RemoteHttp(backend, backend.url or "", self.settings, self._on_status)
        self._catalog_names = {canonical(backend.engine_model(m)): m for m in backend.models}

    def _on_status(self, status: int, message: str) -> ServiceError | None:
        match = _NOT_FOUND.search(message)
        if status == 404 and match:
            name = match.group("name")
            return FailedPrecondition(f"model {name!r} is not installed on {self.http.where}: "
                                      f"{pull_hint(name)}")
        return None

    # -- life cycle ------------------------------------------------------------------------

    async def health(self) -> EngineHealth:
        """Healthy when /api/tags answers; models are the configured ones installed."""
        try:
            installed = await self.tags()
        except ServiceError as exc:
            return EngineHealth(False, detail=exc.message)
        models = tuple(catalog for name, catalog in self._catalog_names.items()
                       if name in installed)
        missing = [catalog for catalog in self.backend.models if catalog not in models]
        detail = f"not pulled: {', '.join(missing)}" if missing else ""
        return EngineHealth(True, models=models, detail=detail)

    # -- chat ------------------------------------------------------------------------------

    def _options(self, sampling: Sampling) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                                   "num_predict": sampling.max_tokens}
        if sampling.stop:
            options["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            options["seed"] = sampling.seed
        if sampling.frequency_penalty:
            options["frequency_penalty"] = sampling.frequency_penalty
        if sampling.presence_penalty:
            options["presence_penalty"] = sampling.presence_penalty
        options["repeat_penalty"] = sampling.repeat_penalty
        if self.settings.ollama_num_ctx:
            options["num_ctx"] = self.settings.ollama_num_ctx
        return options

    def _with_keep_alive(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.settings.ollama_keep_alive is not None:
            body["keep_alive"] = self.settings.ollama_keep_alive
        return body

    async def stream(self, model: str, messages: list[Message],
                     sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        if sampling.logprobs:
            raise InvalidArgument(f"{self.http.where} (Ollama) does not return log "
                                  "probabilities", field="sampling.logprobs")
        body = self._with_keep_alive({
            "model": model, "stream": True, "options": self._options(sampling),
            "messages": [{"role": m.role, "content": m.content} for m in messages]})
        if sampling.response_format.type == "json_object":
            body["format"] = "json"
        elif sampling.response_format.type == "json_schema":
            body["format"] = sampling.response_format.schema
        started = time.perf_counter()
        first: float | None = None
        async with self.http.stream("/api/chat", body) as batches:
            async for items in self.http.ndjson(batches, "/api/chat"):
                texts, final = [], None
                for item in items:
                    if "error" in item:
                        raise UpstreamError(f"{self.http.where} failed mid-reply: "
                                            f"{item['error']}")
                    message = item.get("message") or {}
                    text = message.get("content") if isinstance(message, dict) else None
                    if not isinstance(text, str):
                        raise self.http.malformed("/api/chat line (no message.content)", item)
                    texts.append(text)
                    if item.get("done") is True:
                        final = item
                        break
                if any(texts):
                    first = first or time.perf_counter()
                    yield TextChunk("".join(texts))
                if final is not None:
                    yield Finished.now(final.get("done_reason"),
                                       int(final.get("prompt_eval_count") or 0),
                                       int(final.get("eval_count") or 0),
                                       started=started, first=first)
                    return
        raise UpstreamError(f"{self.http.where} ended the /api/chat stream before its final "
                            "done line (truncated reply)")

    # -- embeddings ------------------------------------------------------------------------

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResult:
        body: dict[str, Any] = self._with_keep_alive({"model": model, "input": texts})
        if self.settings.ollama_num_ctx:
            body["options"] = {"num_ctx": self.settings.ollama_num_ctx}
        reply = await self.http.request_json("POST", "/api/embed", body)
        try:
            vectors = normalised_vectors(reply.get("embeddings"), len(texts))
        except (VectorShapeError, AttributeError) as exc:
            raise self.http.malformed("/api/embed reply", exc) from None
        return EmbeddingResult(vectors=vectors, dimensions=len(vectors[0]),
                               prompt_tokens=int(reply.get("prompt_eval_count") or 0))

    # -- model management ------------------------------------------------------------------

    async def tags(self) -> dict[str, int]:
        """Installed models: canonical Ollama name → size in bytes."""
        reply = await self.http.request_json("GET", "/api/tags")
        models = reply.get("models") if isinstance(reply, dict) else None
        if not isinstance(models, list):
            raise self.http.malformed("/api/tags reply", reply)
        return {canonical(str(m.get("name") or m.get("model"))): int(m.get("size") or 0)
                for m in models if isinstance(m, dict)}

    def pull(self, name: str) -> AsyncIterator[PullProgress]:
        """Installs a model, streaming Ollama's progress."""
        return self._progress("/api/pull", {"model": name, "stream": True}, f"pull of {name}")

    def create(self, name: str, base: str, *, system: str = "",
               parameters: dict[str, Any] | None = None) -> AsyncIterator[PullProgress]:
        """Creates a model from an installed one (e.g. upcoach-assistant from mistral)."""
        body: dict[str, Any] = {"model": name, "from": base, "stream": True}
        if system:
            body["system"] = system
        if parameters:
            body["parameters"] = parameters
        return self._progress("/api/create", body, f"create of {name}")

    async def _progress(self, path: str, body: dict[str, Any],
                        what: str) -> AsyncIterator[PullProgress]:
        async with self.http.stream(path, body) as batches:
            async for items in self.http.ndjson(batches, path):
                for item in items:
                    if "error" in item:
                        raise FailedPrecondition(f"{self.http.where}: {what} failed: "
                                                 f"{item['error']}")
                    status = str(item.get("status") or "")
                    done = status == "success"
                    yield PullProgress(status=status, digest=str(item.get("digest") or ""),
                                         completed=int(item.get("completed") or 0),
                                         total=int(item.get("total") or 0), done=done)
                    if done:
                        return
        raise UpstreamError(f"{self.http.where}: the {what} stream ended before success")
