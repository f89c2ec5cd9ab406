"""Remote backends from the environment, through real generation, router and gateway processes.

OLLAMA_URL points at the Ollama contract double (Ollama's server cannot run here; the double
follows its documented API over real HTTP), VLLM_URL at a port where nothing listens, and
EMBEDDED_BACKEND=false leaves no embedded fallback. So: chats and embeddings run on Ollama; a
deadline ends the upstream stream too; a model Ollama has not pulled is an error that says how to
pull it; an unreachable backend is UNAVAILABLE over gRPC and 503 over REST, naming it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest

from tests.doubles.ollama_double import DEFAULT_REPLY, OllamaDouble
from upcoach_llm.api import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from upcoach_llm.dev.ports import free_port

pytestmark = pytest.mark.integration
USER = common_pb2.ROLE_USER


def messages(text: str = "Give me a tip") -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=USER, content=text)]


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaDouble]:
    with OllamaDouble(installed=["mistral", "nomic-embed-text"]) as double:
        yield double


@pytest.fixture(scope="module")
def vllm_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def stack(stack_factory, ollama, vllm_url):
    return stack_factory(["generation", "embedding", "router", "gateway"], env={
        "OLLAMA_URL": ollama.url, "VLLM_URL": vllm_url, "VLLM_MODEL": "mistral-7b",
        "EMBEDDED_BACKEND": "false", "ROUTER_HEALTH_INTERVAL_S": "0.5",
        "ROUTER_STARTUP_WAIT_S": "10", "CACHE_MODE": "off",
        "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:"})


@pytest.fixture(scope="module")
def router(stack) -> router_pb2_grpc.RouterServiceStub:
    return stack.stub("router", router_pb2_grpc.RouterServiceStub)


def test_backends_come_from_the_environment(router, ollama, vllm_url) -> None:
    listed = {b.name: b for b in router.ListBackends(router_pb2.ListBackendsRequest()).backends}
    assert list(listed) == ["ollama", "vllm"]
    assert listed["ollama"].healthy and listed["ollama"].url == ollama.url
    assert not listed["vllm"].healthy
    assert f"backend vllm (openai at {vllm_url}) is unreachable" in listed["vllm"].detail


def test_the_router_calls_a_remote_engine_itself_without_generation(stack_factory,
                                                                   ollama) -> None:
    alone = stack_factory(["router"], env={
        "OLLAMA_URL": ollama.url, "EMBEDDED_BACKEND": "false", "ROUTER_STARTUP_WAIT_S": "10"})
    before = len(ollama.requests)
    chunks = list(alone.stub("router", router_pb2_grpc.RouterServiceStub).ChatStream(
        router_pb2.ChatStreamRequest(model="mistral", messages=messages()), timeout=30))
    assert chunks[0].route.backend == "ollama" and "".join(c.text for c in chunks) == DEFAULT_REPLY
    assert chunks[-1].usage.completion_tokens > 0
    assert any(r.path == "/api/chat" for r in ollama.requests[before:])


def test_a_chat_streams_from_ollama_with_its_usage(router, ollama) -> None:
    chunks = list(router.ChatStream(router_pb2.ChatStreamRequest(
        model="mistral", messages=messages(),
        sampling=common_pb2.SamplingParams(temperature=0.3, seed=5)), timeout=30))
    assert (chunks[0].route.model, chunks[0].route.backend) == ("mistral", "ollama")
    assert "".join(c.text for c in chunks) == DEFAULT_REPLY
    usage = chunks[-1].usage
    assert usage.completion_tokens == len(DEFAULT_REPLY.split())  # the double's eval_count
    assert usage.prompt_tokens == 4
    body = next(r.body for r in reversed(ollama.requests) if r.path == "/api/chat")
    assert body["model"] == "mistral"
    assert (body["options"]["temperature"], body["options"]["seed"]) == (0.3, 5)


def test_embeddings_and_the_content_index_come_from_ollama(stack, ollama) -> None:
    stub = stack.stub("embedding", embedding_pb2_grpc.EmbeddingServiceStub)
    reply = stub.Embed(embedding_pb2.EmbedRequest(texts=["morning routine"]), timeout=30)
    assert (reply.model, reply.dimensions) == ("nomic-embed-text", 768)
    assert list(reply.embeddings[0].values) == pytest.approx(ollama.embed("morning routine"),
                                                             abs=1e-6)
    hits = stub.SearchContent(embedding_pb2.SearchContentRequest(query="sleep", top_k=3),
                              timeout=30)
    assert hits.model == "nomic-embed-text" and len(hits.hits) == 3


def test_a_deadline_ends_the_call_and_the_upstream_stream(router, ollama) -> None:
    ollama.chunk_delay = 0.2
    aborted = ollama.aborted_streams
    try:
        with pytest.raises(grpc.RpcError) as caught:
            list(router.ChatStream(router_pb2.ChatStreamRequest(
                model="mistral", messages=messages()), timeout=1.0))
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        deadline = time.monotonic() + 15  # a stream left running never counts as aborted
        while ollama.aborted_streams == aborted:
            assert time.monotonic() < deadline, "the upstream stream went on"
            time.sleep(0.05)
    finally:
        ollama.chunk_delay = 0.0


def test_a_model_not_pulled_says_how_to_pull_it(stack, router) -> None:
    with pytest.raises(grpc.RpcError) as routed:
        list(router.ChatStream(router_pb2.ChatStreamRequest(
            model="llama3.2:3b", messages=messages()), timeout=30))
    assert routed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "ollama (llama3.2:3b is not pulled there: ollama pull llama3.2:3b)" in \
        routed.value.details()
    generation = stack.stub("generation", generation_pb2_grpc.GenerationServiceStub)
    with pytest.raises(grpc.RpcError) as direct:
        generation.Generate(generation_pb2.GenerateRequest(
            model="llama3.2:3b", backend="ollama", messages=messages()), timeout=30)
    assert direct.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ollama pull llama3.2:3b" in direct.value.details()
    assert "scripts/setup_models.py" in direct.value.details()


def test_unreachable_backends_are_unavailable_and_503_naming_them(stack, router, ollama,
                                                                  vllm_url) -> None:
    ollama.stop()
    # A probe in flight while the double shuts down sees a reset, not a refusal: wait for a
    # probe that found the port closed.
    deadline = time.monotonic() + 10
    while not all(not b.healthy and "is unreachable" in b.detail
                  for b in router.ListBackends(router_pb2.ListBackendsRequest()).backends):
        assert time.monotonic() < deadline, "ollama was not marked unreachable"
        time.sleep(0.1)
    with pytest.raises(grpc.RpcError) as caught:
        list(router.ChatStream(router_pb2.ChatStreamRequest(model="mistral",
                                                            messages=messages()), timeout=30))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    details = caught.value.details()
    assert f"backend ollama (ollama at {ollama.url}) is unreachable" in details
    assert f"backend vllm (openai at {vllm_url}) is unreachable" in details
    reply = httpx.post(f"http://{stack.spec('gateway').address}/v1/chat/completions",
                       json={"model": "mistral", "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert reply.status_code == 503
    message = reply.json()["error"]["message"]  # named, without the address it runs at
    assert "backend vllm (openai) is unreachable" in message and vllm_url not in message
