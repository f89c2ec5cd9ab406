"""BatchedLlamaEngine on the real SmolLM2-135M model: the same replies as LlamaCppEngine, concurrent
requests that each end on their own terms, isolation of a failing request, and the queue limit."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.upcoach_llm.engines.llama_support import MODEL, N_CTX, STORY, logit_split_noise
from tests.upcoach_llm.engines.llama_support import PROMPTS as SHARED_PROMPTS
from tests.upcoach_llm.engines.llama_support import collect as collect_reply
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import NotFound, OutOfRange, ResourceExhausted, Unavailable
from upcoach_llm.engines import llama_batched
from upcoach_llm.engines.base import Finished, TextChunk, TokenLogprob
from upcoach_llm.engines.llama_batched import BatchedLlamaEngine
from upcoach_llm.engines.llama_cpp_engine import LlamaCppEngine
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings, packaged_model_path
from upcoach_llm.engines.stop_sequences import StopScanner
from upcoach_llm.engines.types.embedded import chat_engine

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARALLEL = 4
LONG_SYSTEM = "You are a patient, encouraging coach. " * 8
PROMPTS = [
    *SHARED_PROMPTS,
    # Longer than one prefill chunk, so it is fed over several steps.
    [Message("system", LONG_SYSTEM),
     Message("user", "Plan a runner's first marathon, week by week.")],
]
# The system prompt of PROMPTS[3] with another question: a prefix to share, not the whole prompt.
SAME_SYSTEM = [Message("system", LONG_SYSTEM), Message("user", "How do I keep running in winter?")]
# About 370 tokens of a sequence's N_CTX, and a reply that goes on repeating itself.
NEARLY_FULL = [
    *STORY, Message("assistant", "Once upon a time " + "there was a runner. " * 60),
    Message("user", "Go on, make it longer.")]
BAD = "this request carries a token the model does not have"
# A sequence that shares its batches may part from its solo reply at a near tie (see the module
# docstring of llama_batched: how llama.cpp cuts a batch into sub-batches changes the logits in
# their last bits). Measured here it never parted before its 30th character; the replies must
# agree at least this far.
SHARED_PREFIX_CHARS = 16


def greedy(max_tokens: int, stop: tuple[str, ...] = (), seed: int | None = 42) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0.0, top_p=1.0, stop=stop, seed=seed)


def settings(parallel: int, max_queue: int = 1) -> LlamaSettings:
    return LlamaSettings(model_path=packaged_model_path(), n_ctx=N_CTX, n_threads=2,
                         parallel=parallel, max_queue=max_queue, queue_timeout_s=300.0)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def solo() -> list[str]:
    """LlamaCppEngine's greedy replies to PROMPTS and SAME_SYSTEM, one context, one request at
    a time, each prompt evaluated afresh."""
    engine = LlamaCppEngine(settings(parallel=1))
    await engine.load()
    try:
        return ["".join((await collect(engine, prompt, greedy(24)))[0])
                for prompt in [*PROMPTS, SAME_SYSTEM]]
    finally:
        await engine.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(solo: list[str]) -> AsyncIterator[BatchedLlamaEngine]:
    engine = BatchedLlamaEngine(settings(parallel=PARALLEL))
    await engine.load()
    yield engine
    await engine.close()


async def collect(engine: BatchedLlamaEngine | LlamaCppEngine, messages: list[Message],
                  sampling: Sampling, model: str = MODEL) -> tuple[list[str], Finished]:
    return await collect_reply(engine, messages, sampling, model)


async def wait_for_free(engine: BatchedLlamaEngine, free: int = PARALLEL,
                        timeout: float = 30.0) -> None:
    started = time.perf_counter()
    while engine.pool is not None and engine.pool.free < free:
        assert time.perf_counter() - started < timeout, "a sequence slot did not come back"
        await asyncio.sleep(0.005)


def shared_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)))


@pytest.fixture(scope="module")
def split_noise() -> float:
    """How far llama.cpp's own logits move on this machine when SAME_SYSTEM's text is evaluated
    in other batch shapes (0 where its kernels compute each token's row alone)."""
    return logit_split_noise(str(packaged_model_path()),
                             LONG_SYSTEM + SAME_SYSTEM[1].content)


async def collect_traced(engine: BatchedLlamaEngine, messages: list[Message],
                         max_tokens: int) -> tuple[str, list[TokenLogprob], Finished]:
    """A greedy reply's text, its tokens with their two likeliest alternatives, and its end."""
    sampling = dataclasses.replace(greedy(max_tokens), logprobs=True, top_logprobs=2)
    text, tokens, finished = "", [], None
    async for item in engine.stream(MODEL, messages, sampling):
        if isinstance(item, TextChunk):
            text += item.text
            tokens += item.logprobs
        else:
            finished = item
    assert finished is not None
    return text, tokens, finished


def assert_agrees(text: str, tokens: list[TokenLogprob], fresh: str, noise: float) -> None:
    """A reply from reused cells is the fresh evaluation's, exactly where llama.cpp shows no
    batch-shape noise here; elsewhere it may part from it only at a near tie: a token whose two
    likeliest choices are closer than twice that noise, which the other batch shape can swap."""
    if text == fresh:
        return
    assert noise > 0, f"parted from the fresh reply with no batch-shape noise: {text!r}"
    parted, seen = shared_prefix(text, fresh), 0
    for token in tokens:
        seen += len(token.token)
        if seen > parted:
            break
    gap = token.top[0][1] - token.top[1][1]
    assert gap <= 2 * noise, (
        f"parted at {token.token!r} (ahead of {token.top[1][0]!r} by {gap:.3f}, noise "
        f"{noise:.3f}): {text!r} vs {fresh!r}")


async def test_streams_several_chunks_then_usage(engine: BatchedLlamaEngine) -> None:
    chunks, finished = await collect(engine, STORY, greedy(24))
    assert len(chunks) >= 5
    assert all(chunks)
    assert (finished.reason, finished.completion_tokens) == ("length", 24)
    assert finished.prompt_tokens > 10
    assert 0 < finished.time_to_first_token_ms <= finished.generation_ms
    await wait_for_free(engine)
    assert engine.occupancy() == (0, 0)
    assert (await engine.health()).models == (MODEL,)


async def test_greedy_alone_gives_the_unbatched_reply(engine: BatchedLlamaEngine,
                                                      solo: list[str]) -> None:
    for prompt, expected in zip(PROMPTS, solo[:len(PROMPTS)], strict=True):
        chunks, _ = await collect(engine, prompt, greedy(24))
        assert "".join(chunks) == expected


def reused(engine: BatchedLlamaEngine) -> int:
    assert engine._scheduler is not None
    return engine._scheduler.reused_tokens


async def test_the_prefix_cache_stays_on_for_a_model_whose_cells_can_be_cut(
        engine: BatchedLlamaEngine) -> None:
    assert engine._scheduler is not None and engine._scheduler.prefix_cache


@pytest.mark.parametrize("kind", ["recurrent", "hybrid", "swa"])
async def test_the_prefix_cache_is_off_for_memory_that_cannot_be_cut(
        monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    llama_cpp = llama_batched.llama_cpp
    monkeypatch.setattr(llama_cpp, "llama_model_is_recurrent", lambda _m: kind == "recurrent")
    monkeypatch.setattr(llama_cpp, "llama_model_is_hybrid", lambda _m: kind == "hybrid")
    monkeypatch.setattr(llama_cpp, "llama_model_n_swa", lambda _m: 4096 if kind == "swa" else 0)
    assert not llama_batched._cells_reusable(None)


async def test_a_reused_prefix_gives_the_reply_of_a_fresh_evaluation(
        engine: BatchedLlamaEngine, solo: list[str], split_noise: float) -> None:
    await collect(engine, PROMPTS[3], greedy(4))
    before = reused(engine)
    text, tokens, finished = await collect_traced(engine, SAME_SYSTEM, 24)  # the system prompt
    assert_agrees(text, tokens, solo[4], split_noise)
    shared = reused(engine) - before
    assert 40 < shared < finished.prompt_tokens
    text, tokens, finished = await collect_traced(engine, SAME_SYSTEM, 24)  # all but the last
    assert_agrees(text, tokens, solo[4], split_noise)
    assert reused(engine) - before - shared == finished.prompt_tokens - 1
    await wait_for_free(engine)


async def test_without_the_prefix_cache_every_prompt_is_evaluated_whole(solo: list[str]) -> None:
    engine = BatchedLlamaEngine(dataclasses.replace(settings(parallel=2), prefix_cache=False))
    await engine.load()
    try:
        for _ in range(2):
            chunks, _ = await collect(engine, PROMPTS[3], greedy(24))
            assert "".join(chunks) == solo[3]
        assert reused(engine) == 0
    finally:
        await engine.close()


async def test_requests_that_arrive_together_evaluate_their_common_prompt_once(
        engine: BatchedLlamaEngine, solo: list[str]) -> None:
    prompt = [Message("system", "Answer in one line."),
              Message("user", "Name three habits of people who sleep well.")]
    alone, finished = await collect(engine, prompt, greedy(24))
    for slot in range(PARALLEL):  # no slot keeps more than "<|im_start|>system\n" of it
        await collect(engine, [Message("user", f"Count to {slot}.")], greedy(1))
    before = reused(engine)
    together = await asyncio.gather(*(collect(engine, prompt, greedy(24))
                                      for _ in range(PARALLEL)))
    # Three take all the prompt but its last token from the first: evaluated once, not four
    # times (the first reuses the template's opening tokens from its slot).
    assert 0 <= reused(engine) - before - (PARALLEL - 1) * (finished.prompt_tokens - 1) <= 4
    texts = {"".join(chunks) for chunks, _ in together}
    assert len(texts) == 1, texts  # the same cells and the same batches: the same reply
    assert shared_prefix(texts.pop(), "".join(alone)) >= SHARED_PREFIX_CHARS
    assert {end.completion_tokens for _, end in together} == {finished.completion_tokens}
    await wait_for_free(engine)


async def test_a_cancelled_sequence_that_shared_a_prefix_leaves_its_owner_alone(
        engine: BatchedLlamaEngine, solo: list[str], split_noise: float) -> None:
    owner = engine.stream(MODEL, PROMPTS[3], greedy(24))
    texts = [(await anext(owner)).text]  # type: ignore[union-attr]
    before = reused(engine)
    borrower = engine.stream(MODEL, SAME_SYSTEM, greedy(400))
    assert isinstance(await anext(borrower), TextChunk)
    assert reused(engine) - before > 40, "the borrower evaluated the owner's prefix again"
    await borrower.aclose()
    async for item in owner:
        if isinstance(item, TextChunk):
            texts.append(item.text)
        else:
            assert (item.reason, item.completion_tokens) == ("length", 24)
    assert shared_prefix("".join(texts), solo[3]) >= min(SHARED_PREFIX_CHARS, len(solo[3]))
    await wait_for_free(engine)
    # The cells both left behind still give, alone, what a fresh evaluation gives.
    for prompt, expected in ((PROMPTS[3], solo[3]), (SAME_SYSTEM, solo[4])):
        before = reused(engine)
        text, tokens, _ = await collect_traced(engine, prompt, 24)
        assert_agrees(text, tokens, expected, split_noise)
        assert reused(engine) > before


async def test_concurrent_greedy_replies_agree_with_the_unbatched_ones(
        engine: BatchedLlamaEngine, solo: list[str]) -> None:
    together = await asyncio.gather(*(collect(engine, p, greedy(24)) for p in PROMPTS))
    for (chunks, end), expected in zip(together, solo[:len(PROMPTS)], strict=True):
        text = "".join(chunks)
        assert shared_prefix(text, expected) >= min(SHARED_PREFIX_CHARS, len(expected)), (
            text, expected)
        assert end.completion_tokens <= 24
    await wait_for_free(engine)


async def test_sampling_with_the_same_seed_is_reproducible(engine: BatchedLlamaEngine) -> None:
    sampling = Sampling(max_tokens=24, temperature=1.2, top_p=0.95, seed=7)
    first, _ = await collect(engine, STORY, sampling)
    second, _ = await collect(engine, STORY, sampling)
    assert "".join(first) == "".join(second)


async def test_four_concurrent_requests_each_end_on_their_own_terms(
        engine: BatchedLlamaEngine) -> None:
    cancelled = engine.stream(MODEL, STORY, greedy(400))
    for _ in range(2):
        assert isinstance(await anext(cancelled), TextChunk)
    sequence = next(iter(engine._jobs))
    others = [asyncio.create_task(collect(engine, prompt, sampling)) for prompt, sampling in [
        (PROMPTS[0], greedy(3)), (PROMPTS[1], greedy(17)),
        (PROMPTS[2], greedy(60, stop=("e", "E")))]]
    await asyncio.sleep(0.2)  # the other three join while the first is generating
    await cancelled.aclose()
    at_close = sequence.generated
    (_, three), (_, seventeen), (stopped, with_stop) = await asyncio.gather(*others)
    await wait_for_free(engine)
    assert sequence.abandoned
    assert sequence.generated <= at_close + 2, "the sequence went on after its stream closed"
    assert (three.reason, three.completion_tokens) == ("length", 3)
    assert (seventeen.reason, seventeen.completion_tokens) == ("length", 17)
    assert with_stop.reason == "stop" and with_stop.completion_tokens < 60
    assert not {"e", "E"} & set("".join(stopped))


async def test_a_bad_request_fails_alone(engine: BatchedLlamaEngine,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tokenize = llama_batched.prompt_tokens

    async def with_a_bad_token(formatter, tokenizer, messages: list[Message]) -> list[int]:
        tokens = await tokenize(formatter, tokenizer, messages)
        return [*tokens, 10**7] if messages[0].content == BAD else tokens

    monkeypatch.setattr(llama_batched, "prompt_tokens", with_a_bad_token)
    results = await asyncio.gather(
        collect(engine, PROMPTS[0], greedy(12)), collect(engine, [Message("user", BAD)],
                                                         greedy(12)),
        collect(engine, PROMPTS[2], greedy(12)), return_exceptions=True)
    assert isinstance(results[1], RuntimeError) and "llama_decode" in str(results[1])
    for result in (results[0], results[2]):
        assert not isinstance(result, BaseException), result
        assert result[1].completion_tokens == 12
    await wait_for_free(engine)


async def test_an_error_in_one_sequence_leaves_the_others_running(
        engine: BatchedLlamaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing(StopScanner):
        def push(self, text: str) -> tuple[str, bool]:
            if "BOOM" in self._stops:
                raise ValueError("this sequence fails while it generates")
            return super().push(text)

    monkeypatch.setattr(llama_batched, "StopScanner", Failing)
    results = await asyncio.gather(
        collect(engine, PROMPTS[0], greedy(10)), collect(engine, STORY, greedy(10, ("BOOM",))),
        collect(engine, PROMPTS[1], greedy(10)), return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert [r[1].completion_tokens for r in (results[0], results[2])] == [10, 10]  # type: ignore[index]
    await wait_for_free(engine)


async def test_an_error_taking_a_shared_prefix_fails_that_request_alone(
        engine: BatchedLlamaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*_: object) -> None:
        raise ValueError("the prefix could not be copied")

    monkeypatch.setattr(llama_batched._Scheduler, "_copy_prefix", failing)
    prompt = [Message("system", "You are terse."), Message("user", "Name a fruit.")]
    results = await asyncio.gather(collect(engine, prompt, greedy(12)),
                                   collect(engine, prompt, greedy(12)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and "could not be copied" in str(failed[0])
    assert not isinstance(ok := results[results.index(failed[0]) ^ 1], BaseException)
    assert ok[1].completion_tokens > 0
    await wait_for_free(engine)


async def test_the_queue_limit_answers_resource_exhausted(engine: BatchedLlamaEngine) -> None:
    streams = [engine.stream(MODEL, STORY, greedy(400)) for _ in range(PARALLEL)]
    for stream in streams:
        assert isinstance(await anext(stream), TextChunk)
    assert engine.occupancy() == (PARALLEL, 0)
    waiting = asyncio.create_task(collect(engine, PROMPTS[0], greedy(2)))
    await asyncio.sleep(0.05)
    assert engine.occupancy() == (PARALLEL, 1)
    with pytest.raises(ResourceExhausted, match="GENERATION_MAX_QUEUE") as caught:
        await collect(engine, PROMPTS[0], greedy(2))
    assert caught.value.retry_after_s == 1.0
    for stream in streams:
        await stream.aclose()
    _, finished = await waiting
    assert finished.completion_tokens == 2
    await wait_for_free(engine)


async def test_a_prompt_longer_than_a_sequence_context_is_out_of_range(
        engine: BatchedLlamaEngine) -> None:
    with pytest.raises(OutOfRange, match="^messages:"):
        await collect(engine, [Message("user", "habit " * N_CTX)], greedy(8))


async def test_max_tokens_past_a_sequence_context_is_out_of_range(
        engine: BatchedLlamaEngine) -> None:
    with pytest.raises(OutOfRange, match="^sampling.max_tokens:"):
        await collect(engine, STORY, greedy(N_CTX))
    assert engine.pool is not None and engine.pool.free == PARALLEL


async def test_a_default_max_tokens_is_shortened_to_the_room_the_prompt_leaves(
        engine: BatchedLlamaEngine) -> None:
    defaulted = dataclasses.replace(greedy(N_CTX), max_tokens_defaulted=True)
    _, finished = await collect(engine, NEARLY_FULL, defaulted)
    assert finished.reason == "length" and finished.prompt_tokens + finished.completion_tokens \
        == N_CTX, "a story that repeats itself goes on until the context is full"


async def test_a_model_it_does_not_serve_is_not_found(engine: BatchedLlamaEngine) -> None:
    with pytest.raises(NotFound, match="'mistral'"):
        await collect(engine, STORY, greedy(4), model="mistral")


async def test_an_engine_not_loaded_is_unavailable() -> None:
    engine = BatchedLlamaEngine(settings(parallel=2))
    with pytest.raises(Unavailable):
        await collect(engine, STORY, greedy(4))
    assert not (await engine.health()).healthy


@pytest.mark.parametrize(("batched", "kind"), [("true", BatchedLlamaEngine),
                                               ("false", LlamaCppEngine)])
async def test_generation_batched_chooses_the_engine(monkeypatch: pytest.MonkeyPatch,
                                                     batched: str, kind: type) -> None:
    monkeypatch.setenv("GENERATION_BATCHED", batched)
    backend = BackendConfig(name="embedded", type="embedded", models=[MODEL])
    assert type(chat_engine(backend, [MODEL])) is kind
