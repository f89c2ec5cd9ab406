"""The registry with an Ollama backend from OLLAMA_URL: availability from /api/tags, PullModel
streaming /api/pull progress. Ollama itself cannot run here: the backend is the contract double
(tests/doubles/ollama_double.py), over real HTTP and a real in-process gRPC server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from tests.doubles.ollama_double import OllamaDouble
from tests.support.grpc_server import serving
from upcoach_llm.api import model_registry_pb2 as pb
from upcoach_llm.api import model_registry_pb2_grpc
from upcoach_llm.registry.service import RegistryService


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[OllamaDouble]:
    with OllamaDouble(installed=["mistral"]) as double:
        monkeypatch.setenv("OLLAMA_URL", double.url)
        yield double


@pytest.fixture
async def stub(ollama) -> AsyncIterator[model_registry_pb2_grpc.ModelRegistryServiceStub]:
    async with serving(RegistryService.from_env()) as (_, channel):
        yield model_registry_pb2_grpc.ModelRegistryServiceStub(channel)


def availability(model: pb.Model) -> dict[str, tuple[bool, str]]:
    return {a.backend: (a.available, a.detail) for a in model.availability}


async def test_availability_comes_from_what_ollama_has_pulled(stub) -> None:
    models = {m.name: m for m in (await stub.ListModels(pb.ListModelsRequest())).models}
    assert availability(models["mistral"]) == {"ollama": (True, "")}
    assert models["mistral"].served
    assert availability(models["llama3.2:3b"]) == {
        "ollama": (False, "not installed on ollama")}


async def test_pull_streams_ollamas_progress_then_the_model_is_available(stub, ollama) -> None:
    steps = [s async for s in stub.PullModel(pb.PullModelRequest(name="llama3.2:3b"))]
    assert steps[0].status == "pulling manifest"
    assert steps[-1].done and steps[-1].status == "success"
    downloads = [s for s in steps if s.digest.startswith("sha256:")]
    assert downloads and all(s.total > 0 for s in downloads)
    assert ollama.requests[-1].body == {"model": "llama3.2:3b", "stream": True}
    reply = await stub.GetModel(pb.GetModelRequest(name="llama3.2:3b"))
    assert reply.model.served


async def test_pull_failures_keep_their_meaning(stub, ollama) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [s async for s in stub.PullModel(pb.PullModelRequest(name="all-minilm-l6-v2",
                                                             backend="ollama"))]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "pull model manifest: file does not exist" in caught.value.details()
    ollama.stop()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [s async for s in stub.PullModel(pb.PullModelRequest(name="llama3.2:3b"))]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"backend ollama (ollama at {ollama.url}) is unreachable" in caught.value.details()


async def test_ollama_shows_only_the_models_it_is_routed(stub) -> None:
    """OLLAMA_MODELS lists what the router sends to Ollama: a catalog model outside it (the
    embedded ones here) has no Ollama row, rather than a misleading 'not installed'."""
    models = {m.name: m for m in (await stub.ListModels(pb.ListModelsRequest())).models}
    assert "ollama" not in availability(models["smollm2-135m-instruct"])
    assert "ollama" not in availability(models["all-minilm-l6-v2"])


async def test_a_pull_without_a_backend_goes_to_one_that_serves_the_model(stub, ollama) -> None:
    steps = [s async for s in stub.PullModel(pb.PullModelRequest(name="all-minilm-l6-v2"))]
    assert steps[-1].done and steps[-1].status == "success"
    assert not [r for r in ollama.requests if r.path == "/api/pull"]  # the embedded backend's
