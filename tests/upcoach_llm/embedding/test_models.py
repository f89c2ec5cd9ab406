"""Embedding model resolution and the backend → engine factory, on the real catalog."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from tests.support.grpc_server import serving
from upcoach_llm.api import embedding_pb2, embedding_pb2_grpc
from upcoach_llm.common.backends import BackendsFile
from upcoach_llm.common.catalog import ModelsFile, load_models
from upcoach_llm.common.errors import ConfigError, FailedPrecondition, InvalidArgument, NotFound
from upcoach_llm.dev.ports import free_port
from upcoach_llm.embedding.content import load_content
from upcoach_llm.embedding.engines import build_served_models
from upcoach_llm.embedding.models import ModelResolver
from upcoach_llm.embedding.service import EmbeddingService
from upcoach_llm.engines.ollama import OllamaEngine
from upcoach_llm.engines.onnx_embedding_engine import OnnxEmbeddingEngine
from upcoach_llm.engines.types import TYPES


@pytest.fixture(scope="module")
def catalog() -> ModelsFile:
    return load_models()


def backends(*entries: dict) -> BackendsFile:
    return BackendsFile.model_validate({"backends": list(entries)})


EMBEDDED = {"name": "embedded", "type": "embedded",
            "models": ["smollm2-135m-instruct", "all-minilm-l6-v2"]}
OLLAMA = {"name": "ollama", "type": "ollama", "url": "http://127.0.0.1:11434",
          "models": ["mistral", "nomic-embed-text"]}


def test_the_embedded_backend_serves_minilm_only(catalog: ModelsFile) -> None:
    served = build_served_models(catalog, backends(EMBEDDED))
    assert list(served) == ["all-minilm-l6-v2"]
    assert served["all-minilm-l6-v2"].backend == "embedded"
    assert isinstance(served["all-minilm-l6-v2"].engine, OnnxEmbeddingEngine)


def test_an_ollama_backend_serves_its_embedding_models(catalog: ModelsFile) -> None:
    served = build_served_models(catalog, backends(OLLAMA, EMBEDDED))
    assert list(served) == ["nomic-embed-text", "all-minilm-l6-v2"]
    assert served["nomic-embed-text"].backend == "ollama"
    assert isinstance(served["nomic-embed-text"].engine, OllamaEngine)


def test_backend_types_without_an_engine_are_skipped_with_a_warning(
        catalog: ModelsFile, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TYPES, "ollama", dataclasses.replace(TYPES["ollama"],
                                                             embedding_engine=None))
    with caplog.at_level(logging.WARNING):
        served = build_served_models(catalog, backends(OLLAMA, EMBEDDED))
    assert list(served) == ["all-minilm-l6-v2"]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.fields["backend"] == "ollama"  # type: ignore[attr-defined]
    assert warning.fields["models"] == ["nomic-embed-text"]  # type: ignore[attr-defined]


def test_the_embedded_engine_refuses_other_embedding_models(catalog: ModelsFile) -> None:
    wrong = {**EMBEDDED, "models": ["nomic-embed-text"]}
    with pytest.raises(ConfigError, match="nomic-embed-text"):
        build_served_models(catalog, backends(wrong))


@pytest.mark.parametrize("requested", ["", "nomic-embed-text", "all-minilm-l6-v2", " "])
def test_resolution_walks_the_fallback_chain(catalog: ModelsFile, requested: str) -> None:
    resolver = ModelResolver(catalog, build_served_models(catalog, backends(EMBEDDED)))
    assert resolver.resolve(requested).name == "all-minilm-l6-v2"


def test_resolution_errors_name_the_model(catalog: ModelsFile) -> None:
    resolver = ModelResolver(catalog, build_served_models(catalog, backends(EMBEDDED)))
    with pytest.raises(NotFound, match="'ada-002'"):
        resolver.resolve("ada-002")
    with pytest.raises(InvalidArgument, match="^model: 'llama3.2:3b' is a chat model"):
        resolver.resolve("llama3.2:3b")


def test_a_chain_nobody_serves_is_a_failed_precondition(catalog: ModelsFile) -> None:
    resolver = ModelResolver(catalog, {})
    with pytest.raises(FailedPrecondition, match="nomic-embed-text.*all-minilm-l6-v2"):
        resolver.resolve("")


def test_a_service_without_an_embedding_model_fails_at_construction(
        catalog: ModelsFile) -> None:
    with pytest.raises(ConfigError, match="routing.default_embedding_model"):
        EmbeddingService(ModelResolver(catalog, {}), [])


async def test_a_down_backend_lets_the_next_model_of_the_chain_stand_in(
        catalog: ModelsFile) -> None:
    """Ollama serving nomic-embed-text is unreachable: the index and Embed use MiniLM instead."""
    down = {**OLLAMA, "url": f"http://127.0.0.1:{free_port()}"}
    service = EmbeddingService(ModelResolver(catalog, build_served_models(
        catalog, backends(down, EMBEDDED))), load_content())
    assert [m.name for m in service.index_candidates] == ["nomic-embed-text", "all-minilm-l6-v2"]
    async with serving(service) as (_, channel):
        assert service.index_model.name == "all-minilm-l6-v2"
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        reply = await stub.Embed(embedding_pb2.EmbedRequest(texts=["a morning walk"]))
        assert (reply.model, reply.dimensions) == ("all-minilm-l6-v2", 384)
        hits = await stub.SearchContent(embedding_pb2.SearchContentRequest(query="sleep"))
        assert hits.model == "all-minilm-l6-v2" and hits.hits
