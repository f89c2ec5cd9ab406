"""The catalog files: the shipped ones load; a bad one fails naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from upcoach_llm.common.backends import load_backends
from upcoach_llm.common.catalog import load_edge_models, load_models
from upcoach_llm.common.errors import ConfigError


def test_shipped_catalog_keeps_the_guides_models_and_routes() -> None:
    catalog = load_models()
    names = [m.name for m in catalog.models]
    assert names[:3] == ["mistral", "llama3.2:3b", "nomic-embed-text"]
    assert catalog.routing.default_model == "mistral"
    assert [(r.pattern, r.model) for r in catalog.routing.routes] == [
        ("quick|reminder|tip", "llama3.2:3b"),
        ("goal|habit|motivation|wellness", "mistral"),
        ("embed|search|similar", "nomic-embed-text"),
    ]
    assert catalog.fallback_chain("mistral") == ["mistral", "llama3.2:3b", "smollm2-135m-instruct"]
    edge = load_edge_models()
    assert [m.id for m in edge.edge_models] == ["tinyllama-1.1b", "smollm-360m"]
    assert (edge.defaults.ios, edge.defaults.android, edge.defaults.low_memory) == (
        "tinyllama-1.1b", "tinyllama-1.1b", "smollm-360m")
    assert [b.name for b in load_backends(catalog).backends] == ["embedded"]


def test_route_to_unknown_model_names_the_key(config_copy: Path) -> None:
    path = config_copy / "models.yaml"
    path.write_text(path.read_text().replace("      model: llama3.2:3b", "      model: gpt-9"))
    with pytest.raises(ConfigError, match=r"models.yaml: .*routing.routes.0.model: model 'gpt-9'"):
        load_models()


def test_bad_regex_and_wrong_type_name_the_key(config_copy: Path) -> None:
    path = config_copy / "models.yaml"
    original = path.read_text()
    path.write_text(original.replace('"quick|reminder|tip"', '"quick(|"'))
    with pytest.raises(ConfigError,
                       match=r"routing.routes.0.pattern: .*invalid regular expression"):
        load_models()
    path.write_text(original.replace("required: true", "required: perhaps", 1))
    with pytest.raises(ConfigError, match=r"models.0.required"):
        load_models()


def test_edge_default_must_exist(config_copy: Path) -> None:
    path = config_copy / "edge_models.yaml"
    path.write_text(path.read_text().replace("low_memory: smollm-360m", "low_memory: nano"))
    with pytest.raises(ConfigError,
                       match=r"edge_models.yaml: .*defaults.low_memory: edge model 'nano'"):
        load_edge_models()


def test_backend_model_must_be_in_catalog(config_copy: Path) -> None:
    path = config_copy / "backends.yaml"
    path.write_text(path.read_text().replace("- all-minilm-l6-v2", "- bert-base"))
    with pytest.raises(ConfigError, match=r"backends.yaml: backends.0.models: 'bert-base'"):
        load_backends(load_models())
