"""UpcoachClient (blocking gRPC) against the real router, embedding and registry processes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest

from upcoach_client import ServerAddresses, UpcoachClient, UpcoachError

pytestmark = pytest.mark.integration
ASK = [{"role": "user", "content": "Give me a motivation tip"}]


@pytest.fixture(scope="module")
def client(online: ServerAddresses) -> Iterator[UpcoachClient]:
    with UpcoachClient(online) as running:
        yield running


def test_chat_stream_carries_route_text_and_usage(client) -> None:
    chunks = list(client.chat_stream(ASK, max_tokens=12, temperature=0, seed=3))
    assert chunks[0].route is not None and chunks[0].route.backend == "embedded"
    assert chunks[0].route.model == "smollm2-135m-instruct"
    assert all(c.route is None for c in chunks[1:])
    assert chunks[-1].finish_reason in ("stop", "length")
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.source == "server" for c in chunks)
    reply = client.chat([("user", "Give me a motivation tip")], max_tokens=12, temperature=0,
                        seed=3)
    assert reply.text == "".join(c.text for c in chunks) and reply.text.strip()
    assert reply.route == chunks[0].route and reply.usage.total_tokens > 0


def test_route_decision_and_backends(client) -> None:
    route = client.route(ASK, coaching_context="habits")
    assert route.requested_model == "llama3.2:3b" and route.backend == "embedded"
    decision = client.decide_inference("auto", "Quick tip for focus?")
    assert decision.target == "on_device" and decision.simple_query
    assert client.decide_inference("serverOnly", "hi").target == "server"
    backends = client.list_backends()
    assert [(b.name, b.type, b.healthy) for b in backends] == [("embedded", "embedded", True)]


def test_embeddings_and_search(client) -> None:
    result = client.embed(["build a morning routine", "a routine for the morning"])
    assert result.model == "all-minilm-l6-v2" and result.dimensions == 384
    assert all(math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-4)
               for vec in result.vectors)
    hits = client.search("how do I stay motivated", top_k=3)
    assert len(hits) == 3 and hits[0].score >= hits[-1].score and hits[0].title


def test_registry_calls(client) -> None:
    models = {m.name: m for m in client.list_models()}
    assert models["smollm2-135m-instruct"].served and not models["mistral"].served
    assert [m.name for m in client.list_models("embedding")] == [
        "nomic-embed-text", "all-minilm-l6-v2"]
    assert client.get_model("all-minilm-l6-v2").availability[0].available
    edge = client.list_edge_models("ios", 4)
    assert edge.default_model_id == "tinyllama-1.1b" and edge.models[0].formats
    steps = list(client.pull_model("all-minilm-l6-v2"))
    assert steps[-1].done and steps[-1].status == "success"


def test_errors_carry_their_status_code(client, offline) -> None:
    with pytest.raises(UpcoachError) as caught:
        client.chat(ASK, model="gpt-9")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND and "gpt-9" in caught.value.message
    assert caught.value.field == "model"
    with pytest.raises(UpcoachError) as caught:
        client.chat([{"role": "user", "content": " "}])
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.field == "messages[0].content"
    with pytest.raises(ValueError, match="platform"):
        client.list_edge_models("windows", 4)
    with pytest.raises(ValueError, match="mode"):
        client.decide_inference("sometimes", "hi")
    with UpcoachClient(offline) as unreachable, pytest.raises(UpcoachError) as caught:
        list(unreachable.chat_stream(ASK))
    assert caught.value.unreachable and caught.value.code == grpc.StatusCode.UNAVAILABLE
