"""The embedding service as a real process: health, Embed and SearchContent over its socket."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import numpy as np
import pytest

from upcoach_llm.api import embedding_pb2, embedding_pb2_grpc
from upcoach_llm.common.health_probe import check

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory(["embedding"])


@pytest.fixture(scope="module")
def embedding(stack) -> embedding_pb2_grpc.EmbeddingServiceStub:
    return stack.stub("embedding", embedding_pb2_grpc.EmbeddingServiceStub)


def test_health_is_serving_for_the_server_and_the_service(stack) -> None:
    address = stack.spec("embedding").address
    name = embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name
    assert check(address) == "SERVING"
    assert check(address, service=name) == "SERVING"


def test_embed_over_the_socket(embedding) -> None:
    reply = embedding.Embed(embedding_pb2.EmbedRequest(
        model="nomic-embed-text",
        texts=["I want to exercise every morning", "Building a daily workout habit",
               "The stock market closed lower"]), timeout=30)
    assert (reply.model, reply.dimensions) == ("all-minilm-l6-v2", 384)
    vectors = np.array([e.values for e in reply.embeddings])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.4


def test_search_content_over_the_socket(embedding) -> None:
    reply = embedding.SearchContent(embedding_pb2.SearchContentRequest(
        query="I can't fall asleep at night", top_k=3), timeout=30)
    assert reply.model == "all-minilm-l6-v2"
    assert reply.hits[0].item.id == "wellness-sleep-schedule"
    assert len(reply.hits) == 3


def test_errors_keep_their_status_code_over_the_socket(embedding) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        embedding.SearchContent(embedding_pb2.SearchContentRequest(query="sleep", top_k=99),
                                timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "top_k" in caught.value.details()


def test_a_bad_setting_stops_start_up_with_exit_code_2() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "upcoach_llm.embedding"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "EMBEDDING_PORT": "0", "EMBEDDING_BATCH_SIZE": "0",
             "INTERNAL_TOKEN": "embedding-test-token-0123"})
    assert process.returncode == 2
    assert "EMBEDDING_BATCH_SIZE" in process.stderr


def test_without_internal_credentials_a_service_does_not_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERNAL_")}
    process = subprocess.run([sys.executable, "-m", "upcoach_llm.embedding"], capture_output=True,
                             text=True, timeout=60, env={**env, "EMBEDDING_PORT": "0"})
    assert process.returncode == 2
    assert "INTERNAL_TOKEN: must be set" in process.stderr


def test_sigterm_drains_and_exits_cleanly(stack_factory) -> None:
    own = stack_factory(["embedding"])
    assert own.stop(["embedding"]) == {"embedding": 0}

