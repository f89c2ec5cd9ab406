"""build_engines: one chat engine per backend type it knows, remote types skipped for now."""

from __future__ import annotations

import logging

import pytest

from services.common.backends import BackendConfig, BackendsFile
from services.common.catalog import load_models
from services.common.errors import ConfigError
from services.engines.llama_cpp_engine import LlamaCppEngine
from services.generation.engines import build_engines


def backends(*configs: BackendConfig) -> BackendsFile:
    return BackendsFile(backends=list(configs))


def test_embedded_gets_llama_cpp_and_remote_types_are_skipped_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    engines = build_engines(load_models(), backends(
        BackendConfig(name="ollama-dev", type="ollama", url="http://127.0.0.1:9",
                      models=["llama3.2:3b"]),
        BackendConfig(name="embedded", type="embedded",
                      models=["smollm2-135m-instruct", "all-minilm-l6-v2"]),
    ))
    assert list(engines) == ["embedded"]
    assert isinstance(engines["embedded"], LlamaCppEngine)
    assert any(getattr(r, "fields", {}).get("backend") == "ollama-dev" for r in caplog.records)


def test_a_backend_with_only_embedding_models_gets_no_chat_engine() -> None:
    assert build_engines(load_models(), backends(
        BackendConfig(name="embedded", type="embedded", models=["all-minilm-l6-v2"]))) == {}


def test_embedded_cannot_serve_another_chat_model() -> None:
    with pytest.raises(ConfigError, match="mistral"):
        build_engines(load_models(), backends(
            BackendConfig(name="embedded", type="embedded", models=["mistral"])))
