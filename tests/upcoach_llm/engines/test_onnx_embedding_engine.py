"""The embedded ONNX embedding engine, on the real all-MiniLM-L6-v2 int8 model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from tokenizers import Tokenizer

from upcoach_llm.common.errors import NotFound, Unavailable
from upcoach_llm.engines.onnx_embedding_engine import (
    DIMENSIONS,
    HEAD_CHARS,
    MAX_TOKENS,
    MODEL_NAME,
    OnnxEmbeddingEngine,
    OnnxEmbeddingSettings,
)
from upcoach_llm.engines.packaged_models import MINILM_ONNX, MINILM_TOKENIZER

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXERCISE = "I want to exercise every morning"
WORKOUT = "Building a daily workout habit"
STOCKS = "The stock market closed lower"


def settings(**overrides: object) -> OnnxEmbeddingSettings:
    values = {"model_path": MINILM_ONNX.path(), "tokenizer_path": MINILM_TOKENIZER.path(),
              "batch_size": 64, "intra_op_threads": 1, **overrides}
    return OnnxEmbeddingSettings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine() -> AsyncIterator[OnnxEmbeddingEngine]:
    engine = OnnxEmbeddingEngine(settings())
    await engine.load()
    yield engine
    await engine.close()


async def vectors(engine: OnnxEmbeddingEngine, texts: list[str]) -> np.ndarray:
    return np.asarray((await engine.embed(MODEL_NAME, texts)).vectors)


async def test_vectors_are_unit_length_with_384_dimensions(engine: OnnxEmbeddingEngine) -> None:
    result = await engine.embed(MODEL_NAME, [EXERCISE, WORKOUT, STOCKS])
    matrix = np.asarray(result.vectors)
    assert result.dimensions == DIMENSIONS == 384
    assert matrix.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


async def test_related_sentences_are_closer_than_unrelated(engine: OnnxEmbeddingEngine) -> None:
    exercise, workout, stocks = await vectors(engine, [EXERCISE, WORKOUT, STOCKS])
    related = float(exercise @ workout)
    unrelated = max(float(exercise @ stocks), float(workout @ stocks))
    assert related > 0.5
    assert unrelated < 0.2
    assert related - unrelated > 0.4


async def test_a_batch_equals_the_texts_one_by_one(engine: OnnxEmbeddingEngine) -> None:
    texts = [WORKOUT, "Sleep.", STOCKS * 3, EXERCISE, "Drink a glass of water when you wake up",
             "A long reflection on goals, " * 20]
    together = await vectors(engine, texts)
    alone = np.vstack([await vectors(engine, [text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


async def test_texts_past_the_batch_size_keep_their_order() -> None:
    texts = [f"{i} " + "word " * (i % 7) + "about habits" for i in range(11)]
    small = OnnxEmbeddingEngine(settings(batch_size=3))
    await small.load()
    try:
        batched = await vectors(small, texts)
    finally:
        await small.close()
    reference = OnnxEmbeddingEngine(settings(batch_size=64))
    await reference.load()
    try:
        whole = await vectors(reference, texts)
    finally:
        await reference.close()
    np.testing.assert_allclose(batched, whole, atol=1e-5)
    assert len({tuple(np.round(row, 4)) for row in batched}) == len(texts)


async def test_prompt_tokens_count_special_tokens_and_stop_at_the_truncation_limit(
        engine: OnnxEmbeddingEngine) -> None:
    short = await engine.embed(MODEL_NAME, ["hello world"])
    assert short.prompt_tokens == 4  # [CLS] hello world [SEP]
    long = await engine.embed(MODEL_NAME, ["goal " * 1000])
    assert long.prompt_tokens == MAX_TOKENS == 256
    both = await engine.embed(MODEL_NAME, ["hello world", "goal " * 1000])
    assert both.prompt_tokens == 4 + 256


LONG_TEXTS = {
    "prose": "I want to build a better morning routine, with journaling and exercise. " * 1400,
    "cjk": "日本語のテキストです" * 10_000,  # one token per character
    "blank head": " " * 5000 + "goal setting works " * 5000,  # the head has no tokens
    "one overlong word": "x" * 99_999,  # one [UNK]
    "overlong words": ("supercalifragilistic" * 10 + " ") * 480,
    "cut inside a word": "a" * (HEAD_CHARS - 40) + " " + "b" * 90 + " tail" * 20,
    # The head overflows and the cut goes through a word it tokenizes into pieces.
    "cut word in the head": "go " * 1300 + "abcdefghij" * 9 + " tail" * 20,
    # Accents and zero-width spaces that the normalizer drops: a word longer than WordPiece's
    # 100 characters in the whole text ([UNK]) but not in the head, kept in the head's tokens.
    "dropped characters": ("go" + " " * 13) * 253 + ("a" + "\u0301" * 9) * 200 + " tail",
    "zero-width spaces": ("go" + " " * 13) * 253 + ("a" + "\u200b" * 9) * 200 + " tail",
}


@pytest.mark.parametrize("name", LONG_TEXTS)
async def test_a_long_text_gives_the_tokens_of_the_whole_text(engine: OnnxEmbeddingEngine,
                                                              name: str) -> None:
    """Only a text's head is tokenized where that is exact; the tokens never differ."""
    text = LONG_TEXTS[name]
    whole = Tokenizer.from_file(str(MINILM_TOKENIZER.path()))
    whole.no_padding()
    whole.enable_truncation(max_length=MAX_TOKENS)
    [encoding] = engine._encode([text])
    assert encoding.ids == whole.encode(text).ids


async def test_an_ordinary_long_text_is_not_tokenized_whole(engine: OnnxEmbeddingEngine) -> None:
    seen: list[int] = []
    real = engine._tokenizer

    class Counting:
        def encode_batch(self, texts: list[str]) -> list:
            seen.extend(len(t) for t in texts)
            return real.encode_batch(texts)

        def encode(self, text: str) -> object:
            seen.append(len(text))
            return real.encode(text)

    engine._tokenizer = Counting()  # type: ignore[assignment]
    try:
        result = await engine.embed(MODEL_NAME, [LONG_TEXTS["prose"], "hello world"])
    finally:
        engine._tokenizer = real
    assert result.prompt_tokens == MAX_TOKENS + 4
    assert seen == [HEAD_CHARS, len("hello world")]


async def test_another_model_name_is_not_found(engine: OnnxEmbeddingEngine) -> None:
    with pytest.raises(NotFound, match="nomic-embed-text"):
        await engine.embed("nomic-embed-text", [EXERCISE])


async def test_embedding_before_load_is_unavailable() -> None:
    unloaded = OnnxEmbeddingEngine(settings())
    with pytest.raises(Unavailable):
        await unloaded.embed(MODEL_NAME, [EXERCISE])
    assert not (await unloaded.health()).healthy
    await unloaded.close()


async def test_health_names_the_model(engine: OnnxEmbeddingEngine) -> None:
    health = await engine.health()
    assert health.healthy
    assert health.models == (MODEL_NAME,)


async def test_the_event_loop_keeps_running_during_inference(
        engine: OnnxEmbeddingEngine) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await engine.embed(MODEL_NAME, [f"Habit number {i}: " + "practise daily " * 10
                                    for i in range(64)])
    ticker.cancel()
    assert ticks >= 5, "embed blocked the event loop"
