"""Opens a llama-cpp-python ``Llama`` with the engine's settings; the benchmark uses it too.

``Llama()`` builds its llama.cpp model parameters itself and offers no argument for
``use_extra_bufts``, so while it loads we hand it defaults with that field cleared (see
LLAMA_EXTRA_BUFFERS in llama_cpp_settings for why).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import llama_cpp
import llama_cpp.llama as llama_module

from upcoach_llm.engines.llama_cpp_settings import LlamaSettings

_patch_lock = threading.RLock()


@contextmanager
def _without_extra_buffers() -> Iterator[None]:
    original = llama_module.llama_cpp.llama_model_default_params

    def defaults() -> llama_cpp.llama_model_params:
        params = original()
        params.use_extra_bufts = False
        return params

    with _patch_lock:
        llama_module.llama_cpp.llama_model_default_params = defaults
        try:
            yield
        finally:
            llama_module.llama_cpp.llama_model_default_params = original


@contextmanager
def _sequences(n_seq_max: int) -> Iterator[None]:
    """Context defaults for ``n_seq_max`` sequences, each with its own KV stream."""
    original = llama_module.llama_cpp.llama_context_default_params

    def defaults() -> llama_cpp.llama_context_params:
        params = original()
        params.n_seq_max = n_seq_max
        params.kv_unified = False
        return params

    with _patch_lock:
        llama_module.llama_cpp.llama_context_default_params = defaults
        try:
            yield
        finally:
            llama_module.llama_cpp.llama_context_default_params = original


def open_llama(settings: LlamaSettings, n_seq_max: int = 1,
               n_threads: int | None = None) -> llama_cpp.Llama:
    """Loads the GGUF into a new llama context (the file is mmapped: weights are shared).

    With ``n_seq_max`` > 1 the context decodes that many sequences at once, each in a KV stream
    of its own with ``settings.n_ctx`` cells (kv_unified off).
    """
    threads = n_threads or settings.n_threads
    kwargs = {"model_path": str(settings.model_path), "n_ctx": settings.n_ctx * n_seq_max,
              "n_threads": threads, "n_threads_batch": threads,
              "n_gpu_layers": 0, "verbose": False}
    with _sequences(n_seq_max) if n_seq_max > 1 else nullcontext():
        if settings.extra_buffers:
            return llama_cpp.Llama(**kwargs)
        with _without_extra_buffers():
            return llama_cpp.Llama(**kwargs)
