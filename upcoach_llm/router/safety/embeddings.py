"""MiniLM sentence embeddings for the crisis check.

The engine is the embedding service's own (upcoach_llm/engines/onnx_embedding_engine.py) on the
packaged all-MiniLM-L6-v2 files, by default on one thread: the texts are short, and the router's
cores stay free for streaming. It runs the int8-compute copy of the model (engines/onnx_int8.py):
every chat waits for its newest message's embedding, and that copy halves it. Similarities are
computed with ``einsum`` rather than BLAS: the matrices are tiny, and OpenBLAS's worker threads,
spinning beside ONNX Runtime's, cost tens of milliseconds on a busy machine.
"""

from __future__ import annotations

import numpy as np

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.engines.base import EmbeddingEngine
from upcoach_llm.engines.onnx_embedding_engine import (
    DIMENSIONS,
    MODEL_NAME,
    OnnxEmbeddingEngine,
    OnnxEmbeddingSettings,
)
from upcoach_llm.engines.onnx_int8 import int8_compute_model
from upcoach_llm.engines.packaged_models import MINILM_ONNX, MINILM_TOKENIZER


def packaged_engine(threads: int = 1, int8_compute: bool = True) -> OnnxEmbeddingEngine:
    """The packaged MiniLM (its int8-compute copy unless told otherwise) on ``threads`` ONNX
    Runtime threads (SAFETY_THREADS; not loaded yet).

    The int8 copy quantizes each run's activations with one scale for the whole batch, so a
    sentence's vector would move (cosine 0.995) with the company it is embedded in: it embeds
    one sentence per run, and a message gets the same verdict whatever else is new in its
    conversation. The float model puts a message's few sentences in one run (each run has a
    fixed cost), padding up to 4x."""
    try:
        model = MINILM_ONNX.path()
        settings = OnnxEmbeddingSettings(model_path=int8_compute_model(model) if int8_compute
                                         else model,
                                         tokenizer_path=MINILM_TOKENIZER.path(),
                                         intra_op_threads=threads, pad_slack=4.0,
                                         batch_size=1 if int8_compute else 64)
    except FileNotFoundError as exc:
        raise ConfigError(f"SAFETY_CHECK: the crisis check needs MiniLM: {exc}") from None
    return OnnxEmbeddingEngine(settings)


async def embed(engine: EmbeddingEngine, texts: list[str], model: str = MODEL_NAME,
                ) -> np.ndarray:
    """One L2-normalised row per text, in one engine call."""
    if not texts:
        return np.empty((0, DIMENSIONS), dtype=np.float32)
    result = await engine.embed(model, texts)
    return np.asarray(result.vectors, dtype=np.float32)


def similarities(vectors: np.ndarray, exemplars: np.ndarray) -> np.ndarray:
    """Cosine of every row of vectors to every row of exemplars (both normalised)."""
    return np.einsum("ij,kj->ik", vectors, exemplars)
