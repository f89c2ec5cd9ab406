"""LlamaCppEngine on the real SmolLM2-135M model: streaming, limits, reproducibility, isolation
between concurrent requests, and a worker that stops when its stream is closed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.upcoach_llm.engines.llama_support import MODEL, N_CTX, PROMPTS, STORY
from tests.upcoach_llm.engines.llama_support import collect as collect_reply
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import NotFound, OutOfRange
from upcoach_llm.engines.base import Finished, TextChunk
from upcoach_llm.engines.llama_cpp_engine import LlamaCppEngine
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings, packaged_model_path

pytestmark = pytest.mark.asyncio(loop_scope="module")



def greedy(max_tokens: int, stop: tuple[str, ...] = ()) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0.0, top_p=1.0, stop=stop)


async def make_engine(parallel: int) -> LlamaCppEngine:
    engine = LlamaCppEngine(LlamaSettings(model_path=packaged_model_path(), n_ctx=N_CTX,
                                          n_threads=2, parallel=parallel, max_queue=8,
                                          queue_timeout_s=300.0))  # waits are not tested here
    await engine.load()
    return engine


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine() -> AsyncIterator[LlamaCppEngine]:
    engine = await make_engine(parallel=1)
    yield engine
    await engine.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine2() -> AsyncIterator[LlamaCppEngine]:
    engine = await make_engine(parallel=2)
    yield engine
    await engine.close()


async def collect(engine: LlamaCppEngine, messages: list[Message], sampling: Sampling,
                  model: str = MODEL) -> tuple[list[str], Finished]:
    return await collect_reply(engine, messages, sampling, model)


async def wait_for_free(engine: LlamaCppEngine, free: int, timeout: float = 30.0) -> float:
    started = time.perf_counter()
    while engine.pool is not None and engine.pool.free < free:
        assert time.perf_counter() - started < timeout, "the context did not come back"
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


async def test_streams_several_chunks_then_usage(engine: LlamaCppEngine) -> None:
    chunks, finished = await collect(engine, STORY, greedy(24))
    assert len(chunks) >= 5
    assert all(chunks)
    assert finished.reason == "length"
    assert finished.completion_tokens == 24
    assert finished.prompt_tokens > 10
    assert 0 < finished.time_to_first_token_ms <= finished.generation_ms


async def test_max_tokens_is_honoured(engine: LlamaCppEngine) -> None:
    chunks, finished = await collect(engine, STORY, greedy(3))
    assert (finished.reason, finished.completion_tokens) == ("length", 3)
    assert 1 <= len(chunks) <= 3


async def test_a_short_answer_ends_with_stop(engine: LlamaCppEngine) -> None:
    question = [Message("user", "Reply with just the word yes.")]
    chunks, finished = await collect(engine, question, greedy(64))
    assert finished.reason == "stop"
    assert finished.completion_tokens < 64
    assert "<|im_end|>" not in "".join(chunks)


async def test_stop_sequence_ends_the_reply_before_it(engine: LlamaCppEngine) -> None:
    chunks, _ = await collect(engine, STORY, greedy(40))
    full = "".join(chunks)
    words = full.split()
    stop = words[len(words) // 2]
    expected = full[:full.index(stop)]
    stopped_chunks, finished = await collect(engine, STORY, greedy(40, stop=(stop,)))
    assert "".join(stopped_chunks) == expected
    assert finished.reason == "stop"
    assert finished.completion_tokens < 40


@pytest.mark.parametrize("seed", [None, 42])
async def test_greedy_is_reproducible_back_to_back(engine: LlamaCppEngine,
                                                  seed: int | None) -> None:
    # Back to back, the second request finds its whole prompt in the context's KV cache.
    sampling = Sampling(max_tokens=24, temperature=0.0, top_p=1.0, seed=seed)
    for messages in ([Message("user", "Write a long story about a runner.")], STORY):
        first, _ = await collect(engine, messages, sampling)
        second, _ = await collect(engine, messages, sampling)
        assert "".join(first) == "".join(second)


async def test_sampling_with_the_same_seed_is_reproducible(engine: LlamaCppEngine) -> None:
    sampling = Sampling(max_tokens=32, temperature=1.2, top_p=0.95, seed=7)
    first, _ = await collect(engine, STORY, sampling)
    await collect(engine, PROMPTS[0], greedy(8))
    second, _ = await collect(engine, STORY, sampling)
    assert "".join(first) == "".join(second)


async def check_concurrent_replies_match_solo_ones(engine: LlamaCppEngine) -> None:
    alone = [await collect(engine, prompt, greedy(24)) for prompt in PROMPTS]
    together = await asyncio.gather(*(collect(engine, prompt, greedy(24)) for prompt in PROMPTS))
    for (solo_chunks, solo_end), (chunks, end) in zip(alone, together, strict=True):
        assert "".join(chunks) == "".join(solo_chunks)
        assert end.completion_tokens == solo_end.completion_tokens
    await wait_for_free(engine, engine.settings.parallel)


async def test_concurrent_requests_on_one_context_wait_their_turn(engine: LlamaCppEngine) -> None:
    await check_concurrent_replies_match_solo_ones(engine)


async def test_concurrent_requests_on_two_contexts_do_not_corrupt_each_other(
        engine2: LlamaCppEngine) -> None:
    await check_concurrent_replies_match_solo_ones(engine2)


async def test_two_contexts_generate_at_the_same_time(engine2: LlamaCppEngine) -> None:
    streams = [engine2.stream(MODEL, prompt, greedy(16)) for prompt in PROMPTS[:2]]
    firsts = await asyncio.gather(*(anext(s) for s in streams))
    assert all(isinstance(item, TextChunk) for item in firsts)
    assert engine2.pool is not None and engine2.pool.free == 0
    for stream in streams:
        await stream.aclose()
    await wait_for_free(engine2, 2)


async def test_closing_the_stream_stops_the_worker(engine: LlamaCppEngine) -> None:
    stream = engine.stream(MODEL, STORY, greedy(400))
    for _ in range(3):
        assert isinstance(await anext(stream), TextChunk)
    job = next(iter(engine._jobs))
    await stream.aclose()
    at_close = job.generated
    await wait_for_free(engine, 1)
    assert job.abandoned
    assert job.generated <= at_close + 2, "the worker went on after the stream was closed"


async def test_cancelling_the_consumer_task_stops_the_worker(engine: LlamaCppEngine) -> None:
    received: list[str] = []
    two_received = asyncio.Event()

    async def consume() -> None:
        async for item in engine.stream(MODEL, STORY, greedy(400)):
            if isinstance(item, TextChunk):
                received.append(item.text)
                if len(received) == 2:
                    two_received.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_received.wait(), 10)
    job = next(iter(engine._jobs))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    at_cancel = job.generated
    await wait_for_free(engine, 1)
    assert job.abandoned and job.generated <= at_cancel + 2
    _, finished = await collect(engine, PROMPTS[0], greedy(4))
    assert finished.completion_tokens == 4


async def test_a_prompt_longer_than_the_context_is_out_of_range(engine: LlamaCppEngine) -> None:
    long = [Message("user", "habit " * N_CTX)]
    with pytest.raises(OutOfRange, match="^messages:"):
        await collect(engine, long, greedy(8))


async def test_max_tokens_past_the_context_is_out_of_range(engine: LlamaCppEngine) -> None:
    await wait_for_free(engine, 1)  # an earlier test's cancelled worker may still be returning
    with pytest.raises(OutOfRange, match="^sampling.max_tokens:"):
        await collect(engine, STORY, greedy(N_CTX))
    assert engine.pool is not None and engine.pool.free == 1, "it failed before taking a context"


async def test_a_default_max_tokens_is_shortened_to_the_room_the_prompt_leaves(
        engine: LlamaCppEngine) -> None:
    nearly_full = [
        *STORY, Message("assistant", "Once upon a time " + "there was a runner. " * 60),
        Message("user", "Go on, make it longer.")]
    defaulted = dataclasses.replace(greedy(N_CTX), max_tokens_defaulted=True)
    _, finished = await collect(engine, nearly_full, defaulted)
    assert finished.reason == "length" and finished.prompt_tokens + finished.completion_tokens \
        == N_CTX, "a story that repeats itself goes on until the context is full"


async def test_a_model_it_does_not_serve_is_not_found(engine: LlamaCppEngine) -> None:
    with pytest.raises(NotFound, match="'mistral'"):
        await collect(engine, STORY, greedy(4), model="mistral")
