"""build_engines: one chat engine per backend type: llama.cpp, Ollama, OpenAI-compatible."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from upcoach_llm.common.backends import BackendConfig, BackendsFile
from upcoach_llm.common.catalog import load_models
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.engines.llama_batched import BatchedLlamaEngine
from upcoach_llm.engines.ollama import OllamaEngine
from upcoach_llm.engines.openai_compat import OpenAICompatEngine
from upcoach_llm.engines.types import TYPES
from upcoach_llm.generation.engines import build_engines


def backends(*configs: BackendConfig) -> BackendsFile:
    return BackendsFile(backends=list(configs))


def test_each_backend_type_gets_its_engine() -> None:
    engines = build_engines(load_models(), backends(
        BackendConfig(name="ollama-dev", type="ollama", url="http://127.0.0.1:9",
                      models=["llama3.2:3b", "nomic-embed-text"]),
        BackendConfig(name="vllm", type="openai", url="http://127.0.0.1:9/v1",
                      models={"mistral": "mistralai/Mistral-7B-Instruct-v0.2"}),
        BackendConfig(name="embedded", type="embedded",
                      models=["smollm2-135m-instruct", "all-minilm-l6-v2"]),
    ))
    assert list(engines) == ["ollama-dev", "vllm", "embedded"]
    assert isinstance(engines["ollama-dev"], OllamaEngine)
    assert isinstance(engines["vllm"], OpenAICompatEngine)
    assert isinstance(engines["embedded"], BatchedLlamaEngine)


def test_a_type_without_an_engine_is_skipped_with_a_warning(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TYPES, "ollama", dataclasses.replace(TYPES["ollama"], chat_engine=None))
    caplog.set_level(logging.WARNING)
    engines = build_engines(load_models(), backends(
        BackendConfig(name="ollama-dev", type="ollama", url="http://127.0.0.1:9",
                      models=["llama3.2:3b"])))
    assert engines == {}
    assert any(getattr(r, "fields", {}).get("backend") == "ollama-dev" for r in caplog.records)


def test_a_backend_with_only_embedding_models_gets_no_chat_engine() -> None:
    assert build_engines(load_models(), backends(
        BackendConfig(name="embedded", type="embedded", models=["all-minilm-l6-v2"]))) == {}


def test_embedded_cannot_serve_another_chat_model() -> None:
    with pytest.raises(ConfigError, match="mistral"):
        build_engines(load_models(), backends(
            BackendConfig(name="embedded", type="embedded", models=["mistral"])))
