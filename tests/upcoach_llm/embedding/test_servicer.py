"""EmbeddingService over a real in-process gRPC server, on the real model and the shipped corpus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from tests.support.grpc_server import serving
from upcoach_llm.api import embedding_pb2, embedding_pb2_grpc
from upcoach_llm.common.limits import MAX_CONTENT_CHARS, MAX_NAME_CHARS, MAX_TAGS, MAX_TOP_K
from upcoach_llm.common.server import MAX_MESSAGE_BYTES
from upcoach_llm.embedding.content import load_content
from upcoach_llm.embedding.service import EmbeddingService

pytestmark = pytest.mark.asyncio(loop_scope="module")

Stub = embedding_pb2_grpc.EmbeddingServiceStub
SHIPPED = len(load_content())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stub() -> AsyncIterator[Stub]:
    async with serving(EmbeddingService.from_env()) as (_, channel):
        yield embedding_pb2_grpc.EmbeddingServiceStub(channel)


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


# ------------------------------------------------------------------ Embed

async def test_embed_returns_one_unit_vector_per_text_in_order(stub: Stub) -> None:
    texts = ["I want to exercise every morning", "Building a daily workout habit",
             "The stock market closed lower"]
    reply = await stub.Embed(embedding_pb2.EmbedRequest(texts=texts))
    assert reply.dimensions == 384
    matrix = np.array([e.values for e in reply.embeddings])
    assert matrix.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert matrix[0] @ matrix[1] > matrix[0] @ matrix[2] + 0.4
    single = await stub.Embed(embedding_pb2.EmbedRequest(texts=[texts[2]]))
    np.testing.assert_allclose(single.embeddings[0].values, matrix[2], atol=1e-5)
    assert reply.prompt_tokens > single.prompt_tokens > 0


@pytest.mark.parametrize("requested", ["", "nomic-embed-text", "all-minilm-l6-v2"])
async def test_embed_reports_the_model_actually_used(stub: Stub, requested: str) -> None:
    reply = await stub.Embed(embedding_pb2.EmbedRequest(model=requested, texts=["a goal"]))
    assert reply.model == "all-minilm-l6-v2"


async def test_an_unknown_model_is_not_found(stub: Stub) -> None:
    error = await rpc_error(stub.Embed(embedding_pb2.EmbedRequest(
        model="text-embedding-3-large", texts=["hi"])))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "text-embedding-3-large" in error.details()


@pytest.mark.parametrize("chat_model", ["mistral", "smollm2-135m-instruct"])
async def test_a_chat_model_is_an_invalid_argument(stub: Stub, chat_model: str) -> None:
    error = await rpc_error(stub.Embed(embedding_pb2.EmbedRequest(
        model=chat_model, texts=["hi"])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("model:")
    assert chat_model in error.details()


@pytest.mark.parametrize(("texts", "field"), [
    ([], "texts:"),
    (["fine", ""], "texts[1]:"),
    (["   "], "texts[0]:"),
    (["x"] * 257, "texts:"),
])
async def test_bad_texts_are_invalid_arguments_naming_the_field(
        stub: Stub, texts: list[str], field: str) -> None:
    error = await rpc_error(stub.Embed(embedding_pb2.EmbedRequest(texts=texts)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(field)


async def test_the_largest_allowed_batch_is_embedded(stub: Stub) -> None:
    texts = [f"Tip {i}: drink water" for i in range(256)]
    reply = await stub.Embed(embedding_pb2.EmbedRequest(texts=texts))
    assert len(reply.embeddings) == 256


# ------------------------------------------------------------------ SearchContent

@pytest.mark.parametrize(("query", "best"), [
    ("How do I start exercising in the morning?", "habit-tiny-morning-workout"),
    ("I can't fall asleep at night", "wellness-sleep-schedule"),
    ("I keep procrastinating on my work", "tip-two-minute-start"),
    ("I'm feeling anxious and overwhelmed", "mood-box-breathing"),
    ("How can I stop scrolling my phone in bed?", "habit-breaking-bad"),
    ("I should drink more water", "wellness-hydration"),
])
async def test_search_ranks_the_right_item_first(stub: Stub, query: str, best: str) -> None:
    reply = await stub.SearchContent(embedding_pb2.SearchContentRequest(query=query))
    assert reply.model == "all-minilm-l6-v2"
    assert len(reply.hits) == 5
    assert reply.hits[0].item.id == best
    scores = [hit.score for hit in reply.hits]
    assert scores == sorted(scores, reverse=True)
    assert reply.hits[0].item.text and reply.hits[0].item.title and reply.hits[0].item.tags


async def test_search_filters_by_category(stub: Stub) -> None:
    reply = await stub.SearchContent(embedding_pb2.SearchContentRequest(
        query="How do I start exercising in the morning?", category="goals", top_k=3))
    assert len(reply.hits) == 3
    assert {hit.item.category for hit in reply.hits} == {"goals"}


async def test_search_with_an_unknown_category_finds_nothing(stub: Stub) -> None:
    reply = await stub.SearchContent(embedding_pb2.SearchContentRequest(
        query="sleep", category="astrology"))
    assert list(reply.hits) == []


async def test_top_k_caps_at_the_index_size(stub: Stub) -> None:
    reply = await stub.SearchContent(embedding_pb2.SearchContentRequest(query="sleep", top_k=50))
    ids = [hit.item.id for hit in reply.hits]
    assert SHIPPED <= len(ids) <= 50  # every item, the shipped ones and any a test indexed
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"query": ""}, "query:"),
    ({"query": "  \n"}, "query:"),
    ({"query": "sleep", "top_k": -1}, "top_k:"),
    ({"query": "sleep", "top_k": 51}, "top_k:"),
])
async def test_bad_searches_are_invalid_arguments_naming_the_field(
        stub: Stub, request_fields: dict, field: str) -> None:
    error = await rpc_error(stub.SearchContent(
        embedding_pb2.SearchContentRequest(**request_fields)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(field)


# ------------------------------------------------------------------ IndexContent

def item(item_id: str, text: str, category: str = "habits") -> embedding_pb2.ContentItem:
    return embedding_pb2.ContentItem(id=item_id, category=category, title="Learn a language",
                                     text=text, tags=["languages"])


async def test_indexed_content_is_found_and_replaced_by_id(stub: Stub) -> None:
    query = embedding_pb2.SearchContentRequest(
        query="What is the best way to learn Spanish vocabulary?", top_k=3)
    added = await stub.IndexContent(embedding_pb2.IndexContentRequest(items=[item(
        "habit-language-flashcards",
        "Learn a new language with ten minutes of flashcards every day; spaced repetition "
        "brings back each Spanish or French word just before you would forget it.")]))
    assert (added.indexed, added.total) == (1, SHIPPED + 1)
    found = await stub.SearchContent(query)
    assert found.hits[0].item.id == "habit-language-flashcards"
    assert list(found.hits[0].item.tags) == ["languages"]

    replaced = await stub.IndexContent(embedding_pb2.IndexContentRequest(items=[item(
        "habit-language-flashcards",
        "Stretch your hamstrings and calves for five minutes after every run.", "wellness")]))
    assert (replaced.indexed, replaced.total) == (1, SHIPPED + 1)
    after = await stub.SearchContent(query)
    assert "habit-language-flashcards" not in [hit.item.id for hit in after.hits]
    stretch = await stub.SearchContent(embedding_pb2.SearchContentRequest(
        query="stretching after running", category="wellness", top_k=1))
    assert stretch.hits[0].item.id == "habit-language-flashcards"


@pytest.mark.parametrize(("items", "field"), [
    ([], "items:"),
    ([item("", "text")], "items[0].id:"),
    ([item("a", "text"), item("b", "")], "items[1].text:"),
    ([item("a", "text", category=" ")], "items[0].category:"),
    ([item("a", "one"), item("a", "two")], "items[1].id:"),
    ([item(f"bulk-{i}", "text") for i in range(257)], "items:"),
    ([item("a", "x" * (MAX_CONTENT_CHARS + 1))], "items[0].text:"),
    ([embedding_pb2.ContentItem(id="a", category="c", text="t",
                                tags=[f"t{i}" for i in range(MAX_TAGS + 1)])], "items[0].tags:"),
    ([embedding_pb2.ContentItem(id="a", category="c", text="t", tags=["ok", "x" * 201])],
     "items[0].tags[1]:"),
])
async def test_bad_items_are_invalid_arguments_naming_the_field(
        stub: Stub, items: list[embedding_pb2.ContentItem], field: str) -> None:
    error = await rpc_error(stub.IndexContent(embedding_pb2.IndexContentRequest(items=items)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(field)


async def test_the_largest_search_reply_fits_in_one_grpc_message() -> None:
    """MAX_TOP_K hits at every content limit, in 4-byte characters: under MAX_MESSAGE_BYTES,
    so a search can never fail on what was indexed."""
    wide = "\U0001F600"
    hit = embedding_pb2.SearchHit(score=1.0, item=embedding_pb2.ContentItem(
        id=wide * MAX_NAME_CHARS, category=wide * MAX_NAME_CHARS, title=wide * MAX_NAME_CHARS,
        text=wide * MAX_CONTENT_CHARS, tags=[wide * MAX_NAME_CHARS] * MAX_TAGS))
    reply = embedding_pb2.SearchContentResponse(hits=[hit] * MAX_TOP_K, model="m" * 200)
    assert reply.ByteSize() < MAX_MESSAGE_BYTES


async def test_texts_and_searches_are_counted_by_model(stub: Stub) -> None:
    model = {"model": "all-minilm-l6-v2"}

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    texts = sample("upcoach_embedding_texts_total", **model)
    batches = sample("upcoach_embedding_batch_size_count", **model)
    searches = sample("upcoach_embedding_search_queries_total", **model)
    await stub.Embed(embedding_pb2.EmbedRequest(texts=["one", "two", "three"]))
    await stub.SearchContent(embedding_pb2.SearchContentRequest(query="morning run"))
    assert sample("upcoach_embedding_texts_total", **model) == texts + 4
    assert sample("upcoach_embedding_batch_size_count", **model) == batches + 2
    assert sample("upcoach_embedding_search_queries_total", **model) == searches + 1
    assert sample("upcoach_embedding_index_items") >= SHIPPED


async def test_with_tracing_on_embed_is_a_span_with_the_genai_attributes() -> None:
    from tests.support.tracing import recorded_spans  # imported here: tracing is optional
    from upcoach_llm.common import tracing

    with recorded_spans() as spans:
        async with serving(EmbeddingService.from_env()) as (_, channel):
            reply = await embedding_pb2_grpc.EmbeddingServiceStub(channel).Embed(
                embedding_pb2.EmbedRequest(model="nomic-embed-text", texts=["a", "b"]))
    [span] = [s for s in spans.get_finished_spans()
              if s.name == "upcoach.llm.v1.EmbeddingService/Embed"]
    assert span.attributes[tracing.GEN_AI_OPERATION_NAME] == "embeddings"
    assert span.attributes[tracing.GEN_AI_REQUEST_MODEL] == "nomic-embed-text"
    assert span.attributes[tracing.GEN_AI_RESPONSE_MODEL] == reply.model
    assert span.attributes[tracing.GEN_AI_USAGE_INPUT_TOKENS] == reply.prompt_tokens
