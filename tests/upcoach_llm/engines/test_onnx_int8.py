"""The int8-compute copy of the packaged MiniLM: derived once, reused, close to the original, and
the original itself where no copy can be made."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from upcoach_llm.engines import onnx_int8
from upcoach_llm.engines.onnx_embedding_engine import OnnxEmbeddingEngine, OnnxEmbeddingSettings
from upcoach_llm.engines.packaged_models import MINILM_ONNX, MINILM_TOKENIZER

SENTENCES = ["I want to build a better morning routine", "I keep thinking about suicide",
             "my hamstrings are killing me today", "What's a realistic first step?"]


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    return onnx_int8.int8_compute_model(MINILM_ONNX.path(), folder)


def _vectors(model: Path) -> np.ndarray:
    engine = OnnxEmbeddingEngine(OnnxEmbeddingSettings(model, MINILM_TOKENIZER.path(),
                                                       intra_op_threads=1))

    async def embed() -> list[list[float]]:
        await engine.load()
        try:
            return (await engine.embed(engine.model_name, SENTENCES)).vectors
        finally:
            await engine.close()

    return np.asarray(asyncio.run(embed()))


def test_the_copy_is_named_by_the_source_and_runtime(derived: Path) -> None:
    assert derived != MINILM_ONNX.path()
    assert derived == onnx_int8.derived_path(MINILM_ONNX.path(), derived.parent)
    assert f"ort{ort.__version__}" in derived.name
    assert not [p for p in derived.parent.iterdir() if p.name.startswith(".derive-")]


def test_the_copy_computes_in_int8(derived: Path) -> None:
    import onnx

    ops = {node.op_type for node in onnx.load(str(derived)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops, ops


def test_a_second_call_reuses_the_copy(derived: Path) -> None:
    stamp = derived.stat().st_mtime_ns
    assert onnx_int8.int8_compute_model(MINILM_ONNX.path(), derived.parent) == derived
    assert derived.stat().st_mtime_ns == stamp


def test_the_copy_embeds_close_to_the_packaged_model(derived: Path) -> None:
    original, copy = _vectors(MINILM_ONNX.path()), _vectors(derived)
    cosines = (original * copy).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    # the similarities the crisis check compares with its thresholds barely move
    assert np.abs(original @ original.T - copy @ copy.T).max() < 0.05


def test_an_unusable_cache_folder_falls_back_to_the_packaged_model(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert onnx_int8.int8_compute_model(MINILM_ONNX.path(), not_a_folder / "cache") == \
        MINILM_ONNX.path()


def test_the_cache_folder_follows_the_variable(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("UPCOACH_CACHE_DIR", str(tmp_path / "c"))
    assert onnx_int8.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("UPCOACH_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_int8.cache_dir() == tmp_path / "home" / ".cache" / "upcoach-llm"
