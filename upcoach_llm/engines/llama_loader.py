"""Opens a llama-cpp-python ``Llama`` with the engine's settings; the benchmark uses it too.

``Llama()`` builds its llama.cpp model parameters itself and offers no argument for
``use_extra_bufts``, so while it loads we hand it defaults with that field cleared (see
LLAMA_EXTRA_BUFFERS in llama_cpp_settings for why).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import llama_cpp
import llama_cpp.llama as llama_module

from upcoach_llm.engines.llama_cpp_settings import LlamaSettings

_patch_lock = threading.Lock()


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


def open_llama(settings: LlamaSettings) -> llama_cpp.Llama:
    """Loads the GGUF into a new llama context (the file is mmapped: weights are shared)."""
    kwargs = {"model_path": str(settings.model_path), "n_ctx": settings.n_ctx,
              "n_threads": settings.n_threads, "n_threads_batch": settings.n_threads,
              "n_gpu_layers": 0, "verbose": False}
    if settings.extra_buffers:
        return llama_cpp.Llama(**kwargs)
    with _without_extra_buffers():
        return llama_cpp.Llama(**kwargs)
