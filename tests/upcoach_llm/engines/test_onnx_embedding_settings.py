"""Settings of the embedded ONNX embedding engine: packaged defaults, environment, bad values."""

from __future__ import annotations

import pytest

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.engines.onnx_embedding_engine import OnnxEmbeddingSettings
from upcoach_llm.engines.packaged_models import MINILM_ONNX, MINILM_TOKENIZER


def test_settings_default_to_the_packaged_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMBEDDING_MODEL_PATH", "EMBEDDING_TOKENIZER_PATH", "EMBEDDING_BATCH_SIZE",
                 "EMBEDDING_THREADS"):
        monkeypatch.delenv(name, raising=False)
    loaded = OnnxEmbeddingSettings.from_env()
    assert loaded.model_path == MINILM_ONNX.path()
    assert loaded.tokenizer_path == MINILM_TOKENIZER.path()
    assert (loaded.batch_size, loaded.intra_op_threads) == (64, 0)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL_PATH", str(MINILM_ONNX.path()))
    monkeypatch.setenv("EMBEDDING_BATCH_SIZE", "8")
    monkeypatch.setenv("EMBEDDING_THREADS", "2")
    loaded = OnnxEmbeddingSettings.from_env()
    assert (loaded.batch_size, loaded.intra_op_threads) == (8, 2)


@pytest.mark.parametrize(("variable", "value"), [
    ("EMBEDDING_MODEL_PATH", "/nonexistent/model.onnx"),
    ("EMBEDDING_TOKENIZER_PATH", "/nonexistent/tokenizer.json"),
    ("EMBEDDING_BATCH_SIZE", "0"),
    ("EMBEDDING_BATCH_SIZE", "many"),
    ("EMBEDDING_THREADS", "-1"),
])
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                        value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        OnnxEmbeddingSettings.from_env()
