"""Backends from config/backends.yaml plus OLLAMA_* / VLLM_* / EMBEDDED_BACKEND."""

from __future__ import annotations

import pytest

from upcoach_llm.common.backends import load_backends
from upcoach_llm.common.catalog import load_models
from upcoach_llm.common.errors import ConfigError

VARIABLES = ("OLLAMA_URL", "OLLAMA_PORT", "OLLAMA_HOST", "OLLAMA_MODELS", "VLLM_URL",
             "VLLM_MODEL", "VLLM_CATALOG_MODEL", "EMBEDDED_BACKEND")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def catalog():
    return load_models()


def summary(catalog) -> list[tuple[str, str, str | None]]:
    return [(b.name, b.type, b.url) for b in load_backends(catalog).backends]


def test_only_the_embedded_backend_by_default(catalog) -> None:
    assert summary(catalog) == [("embedded", "embedded", None)]


def test_several_ollama_urls_then_embedded_last(catalog, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_URL", "http://ollama:11434, http://ollama-b:11434/")
    backends = load_backends(catalog)
    assert [(b.name, b.type, b.url) for b in backends.backends] == [
        ("ollama", "ollama", "http://ollama:11434"),
        ("ollama-2", "ollama", "http://ollama-b:11434"),
        ("embedded", "embedded", None)]
    assert backends.get("ollama").models == {"mistral": "mistral", "llama3.2:3b": "llama3.2:3b",
                                             "nomic-embed-text": "nomic-embed-text"}


def test_ollama_port_and_host_and_a_model_map(catalog, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_PORT", "11434")
    monkeypatch.setenv("OLLAMA_MODELS", "mistral, smollm2-135m-instruct=smollm2:135m")
    backend = load_backends(catalog).get("ollama")
    assert backend.url == "http://localhost:11434"
    assert backend.engine_model("smollm2-135m-instruct") == "smollm2:135m"
    monkeypatch.setenv("OLLAMA_HOST", "ollama")
    assert load_backends(catalog).get("ollama").url == "http://ollama:11434"
    monkeypatch.setenv("OLLAMA_URL", "http://other:1")
    assert load_backends(catalog).get("ollama").url == "http://other:1"  # the URL wins


def test_vllm_urls_serve_vllm_model_under_a_catalog_name(catalog, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_URL", "http://vllm:8000/v1,http://vllm-b:8000")
    monkeypatch.setenv("VLLM_MODEL", "mistralai/Mistral-7B-Instruct-v0.2")
    backends = load_backends(catalog)
    assert [b.name for b in backends.backends] == ["vllm", "vllm-2", "embedded"]
    assert backends.get("vllm").models == {"mistral": "mistralai/Mistral-7B-Instruct-v0.2"}
    assert backends.get("vllm").type == "openai"
    monkeypatch.setenv("VLLM_CATALOG_MODEL", "llama3.2:3b")
    assert list(load_backends(catalog).get("vllm-2").models) == ["llama3.2:3b"]


def test_vllm_model_alone_adds_nothing(catalog, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_MODEL", "mistralai/Mistral-7B-Instruct-v0.2")
    assert [name for name, _, _ in summary(catalog)] == ["embedded"]


def test_embedded_backend_can_be_turned_off(catalog, monkeypatch) -> None:
    monkeypatch.setenv("EMBEDDED_BACKEND", "false")
    with pytest.raises(ConfigError, match="EMBEDDED_BACKEND: false, but no other backend"):
        load_backends(catalog)
    monkeypatch.setenv("OLLAMA_URL", "http://ollama:11434")
    assert [name for name, _, _ in summary(catalog)] == ["ollama"]


@pytest.mark.parametrize(("env", "message"), [
    ({"OLLAMA_URL": "ollama:11434"}, "OLLAMA_URL: 'ollama:11434' is not an http"),
    ({"OLLAMA_URL": "http://ollama:port"}, "OLLAMA_URL: .* invalid port"),
    ({"OLLAMA_PORT": "eleven"}, "OLLAMA_PORT: 'eleven' is not an integer"),
    ({"OLLAMA_PORT": "11434", "OLLAMA_HOST": "0.0.0.0:11434"}, "OLLAMA_HOST: .* host name"),
    ({"OLLAMA_URL": "http://o:1", "OLLAMA_MODELS": "gpt-9"}, "OLLAMA_MODELS: 'gpt-9' is not"),
    ({"VLLM_URL": "http://vllm:8000"}, "VLLM_MODEL: required when VLLM_URL is set"),
    ({"VLLM_URL": "http://vllm:8000", "VLLM_MODEL": "m", "VLLM_CATALOG_MODEL": "gpt-9"},
     "VLLM_CATALOG_MODEL: 'gpt-9' is not in models.yaml"),
    ({"VLLM_URL": "http://vllm:8000", "VLLM_MODEL": "m", "VLLM_CATALOG_MODEL":
      "nomic-embed-text"}, "VLLM_CATALOG_MODEL: .* embedding model"),
    ({"EMBEDDED_BACKEND": "maybe"}, "EMBEDDED_BACKEND: 'maybe' is not a boolean"),
])
def test_bad_values_name_the_variable(catalog, monkeypatch, env, message) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_backends(catalog)


def test_an_env_backend_may_not_reuse_a_file_backends_name(catalog, config_copy,
                                                           monkeypatch) -> None:
    (config_copy / "backends.yaml").write_text(
        "backends:\n  - {name: ollama, type: ollama, url: 'http://a:1', models: [mistral]}\n")
    monkeypatch.setenv("OLLAMA_URL", "http://b:1")
    with pytest.raises(ConfigError, match="OLLAMA_URL: backend name 'ollama' is already used"):
        load_backends(catalog)
