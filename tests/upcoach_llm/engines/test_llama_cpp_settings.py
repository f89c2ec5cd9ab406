"""LlamaSettings.from_env: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

import os

import pytest

from upcoach_llm.common.errors import ConfigError
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings, packaged_model_path


def test_defaults_serve_the_packaged_smollm2(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENERATION_MODEL_PATH", "LLAMA_N_CTX", "GENERATION_PARALLEL",
                 "GENERATION_MAX_QUEUE", "LLAMA_EXTRA_BUFFERS", "GENERATION_MODEL_NAME",
                 "GENERATION_BATCHED", "GENERATION_PREFIX_CACHE"):
        monkeypatch.delenv(name, raising=False)
    settings = LlamaSettings.from_env()
    assert settings.model_path == packaged_model_path()
    assert settings.model_path.is_file()
    assert settings.model_name == "smollm2-135m-instruct"
    assert (settings.n_ctx, settings.parallel, settings.max_queue) == (2048, 4, 16)
    assert settings.batched is True
    assert settings.prefix_cache is True
    assert settings.n_threads >= 1
    assert settings.extra_buffers is False


def test_threads_default_to_the_cpus_shared_out_among_the_contexts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMA_N_THREADS", raising=False)
    monkeypatch.setenv("GENERATION_PARALLEL", "1")
    alone = LlamaSettings.from_env().n_threads
    monkeypatch.setenv("GENERATION_PARALLEL", str(alone * 2))
    assert alone == len(os.sched_getaffinity(0))
    assert LlamaSettings.from_env().n_threads == 1


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_N_CTX", "1024")
    monkeypatch.setenv("LLAMA_N_THREADS", "3")
    monkeypatch.setenv("GENERATION_PARALLEL", "2")
    monkeypatch.setenv("GENERATION_MAX_QUEUE", "0")
    settings = LlamaSettings.from_env()
    assert (settings.n_ctx, settings.n_threads, settings.parallel, settings.max_queue) == (
        1024, 3, 2, 0)


@pytest.mark.parametrize(("name", "value"), [
    ("LLAMA_N_CTX", "lots"), ("LLAMA_N_CTX", "8"), ("LLAMA_N_THREADS", "0"),
    ("GENERATION_PARALLEL", "0"), ("GENERATION_MAX_QUEUE", "-1"),
    ("LLAMA_EXTRA_BUFFERS", "maybe"), ("GENERATION_MODEL_PATH", "/nonexistent/model.gguf"),
])
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                      value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        LlamaSettings.from_env()


def test_the_prefix_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERATION_PREFIX_CACHE", "false")
    assert LlamaSettings.from_env().prefix_cache is False
