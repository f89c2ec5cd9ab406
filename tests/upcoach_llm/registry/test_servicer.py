"""ModelRegistryService over a real in-process gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import REGISTRY

from tests.support.grpc_server import serving
from upcoach_llm.api import model_registry_pb2 as pb
from upcoach_llm.api import model_registry_pb2_grpc
from upcoach_llm.registry.service import RegistryService


@pytest.fixture
async def stub() -> AsyncIterator[model_registry_pb2_grpc.ModelRegistryServiceStub]:
    async with serving(RegistryService.from_env()) as (_, channel):
        yield model_registry_pb2_grpc.ModelRegistryServiceStub(channel)


async def test_lists_the_catalog_with_availability(stub) -> None:
    reply = await stub.ListModels(pb.ListModelsRequest())
    models = {m.name: m for m in reply.models}
    assert list(models)[:3] == ["mistral", "llama3.2:3b", "nomic-embed-text"]
    assert models["mistral"].size_bytes == 4_100_000_000
    assert not models["mistral"].served
    smol = models["smollm2-135m-instruct"]
    assert smol.served and smol.kind == pb.MODEL_KIND_CHAT
    assert [(a.backend, a.available) for a in smol.availability] == [("embedded", True)]
    embeddings = await stub.ListModels(pb.ListModelsRequest(kind=pb.MODEL_KIND_EMBEDDING))
    assert {m.name for m in embeddings.models} == {"nomic-embed-text", "all-minilm-l6-v2"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListModels(pb.ListModelsRequest(kind=77))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("kind: unknown kind 77 (MODEL_KIND_CHAT, ")


async def test_get_model_and_not_found(stub) -> None:
    reply = await stub.GetModel(pb.GetModelRequest(name="all-minilm-l6-v2"))
    assert reply.model.served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetModel(pb.GetModelRequest(name="gpt-9"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "gpt-9" in caught.value.details()


async def test_edge_models(stub) -> None:
    reply = await stub.ListEdgeModels(pb.ListEdgeModelsRequest(platform=pb.PLATFORM_IOS,
                                                               ram_gb=4))
    assert [m.id for m in reply.models] == ["tinyllama-1.1b", "smollm-360m"]
    assert reply.default_model_id == "tinyllama-1.1b"
    assert {f.format for f in reply.models[0].formats} == {"onnx", "coreml"}
    for bad in (pb.ListEdgeModelsRequest(ram_gb=4),
                pb.ListEdgeModelsRequest(platform=pb.PLATFORM_ANDROID, ram_gb=-1)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListEdgeModels(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_pull_embedded_and_refusals(stub) -> None:
    def pulls(result: str) -> float:
        return REGISTRY.get_sample_value("upcoach_registry_pulls_total",
                                         {"backend": "embedded", "result": result}) or 0.0

    ok = pulls("ok")
    progress = [p async for p in stub.PullModel(pb.PullModelRequest(name="all-minilm-l6-v2"))]
    assert progress[-1].done and progress[-1].status == "success"
    assert progress[-1].total > 20_000_000
    assert pulls("ok") == ok + 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [p async for p in stub.PullModel(pb.PullModelRequest(name="mistral"))]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "OLLAMA_URL" in caught.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [p async for p in stub.PullModel(pb.PullModelRequest(name="mistral", backend="gpu-9"))]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
