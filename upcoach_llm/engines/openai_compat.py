"""The OpenAI-compatible engine (vLLM in production, or any server with the same API).

``/v1/chat/completions`` with ``stream: true`` sends server-sent events, ``data: {chunk}`` each,
then ``data: [DONE]``; usage comes from the final usage chunk when the server honours
``stream_options.include_usage`` (vLLM does), else completion tokens are the content chunks
counted. ``/v1/embeddings`` embeds a batch; ``/v1/models`` lists what the server serves.

OpenAI's sampling fields pass through as OpenAI spells them: ``response_format`` (json_object,
or json_schema with its name and schema: vLLM enforces both with guided decoding),
``frequency_penalty`` and ``presence_penalty`` when set, ``logprobs`` and ``top_logprobs`` when
asked for, and each chunk's ``choices[].logprobs.content`` comes back on its text. The server's
GENERATION_REPEAT_PENALTY, when not 1.0 (off), goes as ``repetition_penalty``, an extra body
field of vLLM's OpenAI server (OpenAI's own API has no such field, so leave it at 1.0 there).

A stream that ends without ``[DONE]``, or with ``[DONE]`` but no finish_reason (llama_cpp.server
ends an interrupted reply that way), an event that is not JSON, or an ``error`` event is
UpstreamError; HTTP 5xx or no connection is Unavailable naming the backend and its URL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import ServiceError, UpstreamError
from upcoach_llm.engines.base import (
    ChatEngine,
    EmbeddingEngine,
    EmbeddingResult,
    EngineHealth,
    Finished,
    TextChunk,
    TokenLogprob,
)
from upcoach_llm.engines.remote_engine import RemoteLifecycle
from upcoach_llm.engines.remote_http import RemoteHttp
from upcoach_llm.engines.remote_settings import RemoteSettings
from upcoach_llm.engines.vectors import VectorShapeError, normalised_vectors

DONE = "[DONE]"


def base_url(url: str) -> str:
    """The server root: ``http://vllm:8000/v1`` and ``http://vllm:8000`` both work."""
    return url.rstrip("/").removesuffix("/v1")


class OpenAICompatEngine(RemoteLifecycle, ChatEngine, EmbeddingEngine):
    """One OpenAI-compatible server; chat and embeddings share its HTTP client."""

    def __init__(self, backend: BackendConfig, settings: RemoteSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or RemoteSettings()
        headers = ({"Authorization": f"Bearer {self.settings.openai_api_key}"}
                   if self.settings.openai_api_key else {})
        self.http = RemoteHttp(backend, base_url(backend.url or ""), self.settings,
                               headers=headers)

    # -- life cycle ------------------------------------------------------------------------

    async def served_models(self) -> list[str]:
        """The model ids /v1/models lists."""
        reply = await self.http.request_json("GET", "/v1/models")
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list):
            raise self.http.malformed("/v1/models reply", reply)
        return [str(m.get("id")) for m in data if isinstance(m, dict)]

    async def health(self) -> EngineHealth:
        """Healthy when /v1/models answers and lists at least one configured model."""
        try:
            served = set(await self.served_models())
        except ServiceError as exc:
            return EngineHealth(False, detail=exc.message)
        models = tuple(m for m in self.backend.models if self.backend.engine_model(m) in served)
        if self.backend.models and not models:
            wanted = ", ".join(self.backend.engine_model(m) for m in self.backend.models)
            return EngineHealth(False, detail=f"{self.http.where} serves "
                                f"{', '.join(sorted(served)) or 'nothing'}, not {wanted}")
        return EngineHealth(True, models=models)

    # -- chat ------------------------------------------------------------------------------

    def _chat_body(self, model: str, messages: list[Message], sampling: Sampling) -> dict:
        body: dict[str, Any] = {
            "model": model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p}
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.frequency_penalty:
            body["frequency_penalty"] = sampling.frequency_penalty
        if sampling.presence_penalty:
            body["presence_penalty"] = sampling.presence_penalty
        if sampling.repeat_penalty != 1.0:
            body["repetition_penalty"] = sampling.repeat_penalty
        if sampling.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = sampling.top_logprobs
        kind = sampling.response_format.type
        if kind == "json_object":
            body["response_format"] = {"type": "json_object"}
        elif kind == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": sampling.response_format.schema_name or "response",
                "schema": sampling.response_format.schema}}
        return body

    async def _events(self, batches: AsyncIterator[list[str]]) -> AsyncIterator[list[dict | None]]:
        """The JSON of each ``data:`` event, a network read at a time; None for ``[DONE]``."""
        async for lines in batches:
            events: list[dict | None] = []
            for line in lines:
                if not line.startswith("data:"):
                    continue  # blank separators, comments (":"), event and id fields
                data = line[5:].strip()
                if data == DONE:
                    events.append(None)
                    break
                try:
                    event = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise self.http.malformed("server-sent event", data) from None
                if not isinstance(event, dict):
                    raise self.http.malformed("server-sent event", data)
                events.append(event)
            if events:
                yield events
            if events and events[-1] is None:
                return

    def _texts(self, event: dict, logprobs: list[TokenLogprob]) -> tuple[list[str], str | None]:
        """The content deltas of a chunk event and its finish_reason (its tokens' log
        probabilities go onto ``logprobs``); an error event raises."""
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise UpstreamError(f"{self.http.where} failed mid-reply: {message}")
        texts, finish = [], None
        for choice in event.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                raise self.http.malformed("chat chunk (no choices[].delta)", event)
            if delta.get("content"):
                texts.append(delta["content"])
            logprobs += self._logprobs(choice.get("logprobs"), event)
            finish = choice.get("finish_reason") or finish
        return texts, finish

    def _logprobs(self, raw: object, event: dict) -> list[TokenLogprob]:
        """OpenAI's ``choices[].logprobs`` (``content``: token, logprob, top_logprobs)."""
        if raw is None:
            return []
        try:
            return [TokenLogprob(str(item["token"]), float(item["logprob"]),
                                 tuple((str(top["token"]), float(top["logprob"]))
                                       for top in item.get("top_logprobs") or ()))
                    for item in raw.get("content") or ()]  # type: ignore[attr-defined]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise self.http.malformed("chat chunk (choices[].logprobs)", event) from None

    async def stream(self, model: str, messages: list[Message],
                     sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        started = time.perf_counter()
        first: float | None = None
        finish: str | None = None
        chunks, usage = 0, None
        async with self.http.stream("/v1/chat/completions",
                                    self._chat_body(model, messages, sampling)) as batches:
            async for events in self._events(batches):
                texts: list[str] = []
                logprobs: list[TokenLogprob] = []
                for event in events:
                    if event is None:
                        break
                    more, reason = self._texts(event, logprobs)
                    texts += more
                    finish = reason or finish
                    usage = event.get("usage") or usage
                if texts:
                    first = first or time.perf_counter()
                    chunks += len(texts)
                    yield TextChunk("".join(texts), tuple(logprobs))
                if events[-1] is None:
                    if finish is None:
                        raise UpstreamError(f"{self.http.where} sent [DONE] before any "
                                            "finish_reason (the reply was interrupted)")
                    usage = usage or {}
                    yield Finished.now(finish, int(usage.get("prompt_tokens") or 0),
                                       int(usage.get("completion_tokens") or chunks),
                                       started=started, first=first)
                    return
        raise UpstreamError(f"{self.http.where} ended the chat stream without [DONE] "
                            "(truncated reply)")

    # -- embeddings ------------------------------------------------------------------------

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResult:
        reply = await self.http.request_json("POST", "/v1/embeddings",
                                             {"model": model, "input": texts})
        try:
            data = sorted(reply["data"], key=lambda item: item["index"])
            vectors = normalised_vectors([item["embedding"] for item in data], len(texts))
        except (VectorShapeError, KeyError, TypeError) as exc:
            raise self.http.malformed("/v1/embeddings reply", exc) from None
        usage = reply.get("usage") or {}
        return EmbeddingResult(vectors=vectors, dimensions=len(vectors[0]),
                               prompt_tokens=int(usage.get("prompt_tokens") or 0))
