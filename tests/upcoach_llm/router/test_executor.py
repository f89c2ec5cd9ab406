"""The chat executor on remote engines run in-process: failover before the first token, counted
by backend and code, on to the next model of the fallback chain when every backend of the model
failed, and each finished generation counted in the engine metrics once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from prometheus_client import REGISTRY

from upcoach_llm.api import common_pb2
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import (
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    Unreachable,
)
from upcoach_llm.engines.base import ChatEngine, EngineHealth, Finished, TextChunk
from upcoach_llm.router.backend_pool import BackendPool
from upcoach_llm.router.executor import ChatExecutor, Job, Served
from upcoach_llm.router.targets import Chat

MODEL = "executor-model"


class Engine(ChatEngine):
    """Says "Hello there" in two chunks, or raises ``error`` before any."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.asked: list[str] = []

    async def load(self) -> None:
        pass

    async def stream(self, model: str, messages: list[Message],
                     sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        self.asked.append(model)
        if self.error is not None:
            raise self.error
        yield TextChunk("Hello")
        yield TextChunk(" there")
        yield Finished("stop", prompt_tokens=5, completion_tokens=2,
                       time_to_first_token_ms=30.0, generation_ms=60.0)


class Remote:
    def __init__(self, engines: dict[str, ChatEngine]) -> None:
        self.engines = engines


def backend(name: str, models: tuple[str, ...] = (MODEL,)) -> BackendConfig:
    return BackendConfig(name=name, type="ollama", url=f"http://{name}:11434",
                         models=list(models))


async def run(engines: dict[str, ChatEngine]) -> tuple[BackendPool, list[str]]:
    async def prober(config: BackendConfig) -> EngineHealth:
        return EngineHealth(True, (MODEL,))

    pool = BackendPool([backend(name) for name in engines], prober, interval=60)
    await pool.probe_all()
    chat = Chat("r-1", MODEL, [Message("user", "hi")], Sampling(8, 0.0, 1.0), [],
                common_pb2.SamplingParams())
    executor = ChatExecutor(None, pool, Remote(engines))  # type: ignore[arg-type]
    pieces = [piece async for _, piece in executor.stream(
        Job(pool.resolve([MODEL]), chat), timeout=None)]
    return pool, [piece.text for piece in pieces]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_failovers_are_counted_and_the_reply_in_the_engine_metrics() -> None:
    counted = {"model": MODEL, "backend": "exec-c", "backend_type": "ollama"}
    tokens = sample("upcoach_engine_generated_tokens_total", **counted)
    timed = sample("upcoach_engine_time_to_first_token_seconds_count", **counted)
    busy = sample("upcoach_router_failovers_total", backend="exec-a", code="RESOURCE_EXHAUSTED")
    down = sample("upcoach_router_failovers_total", backend="exec-b", code="UNAVAILABLE")
    pool, texts = await run({"exec-a": Engine(ResourceExhausted("busy", retry_after_s=1)),
                             "exec-b": Engine(Unreachable("refused")), "exec-c": Engine()})
    assert "".join(texts) == "Hello there"
    assert sample("upcoach_router_failovers_total", backend="exec-a",
                  code="RESOURCE_EXHAUSTED") == busy + 1
    assert sample("upcoach_router_failovers_total", backend="exec-b",
                  code="UNAVAILABLE") == down + 1
    assert sample("upcoach_engine_generated_tokens_total", **counted) == tokens + 2
    assert sample("upcoach_engine_time_to_first_token_seconds_count", **counted) == timed + 1
    assert sample("upcoach_router_backend_up", backend="exec-a", backend_type="ollama") == 1
    assert sample("upcoach_router_backend_up", backend="exec-b", backend_type="ollama") == 0
    assert not pool.states[1].healthy


async def test_a_backend_that_answers_with_failures_is_down_only_after_several_in_a_row() -> None:
    async def prober(config: BackendConfig) -> EngineHealth:
        return EngineHealth(True, (MODEL,))

    flaky, spare = Engine(Unavailable("HTTP 500: this prompt broke it")), Engine()
    pool = BackendPool([backend("exec-flaky"), backend("exec-spare")], prober, interval=60,
                       circuit_failures=3)
    await pool.probe_all()
    executor = ChatExecutor(None, pool,  # type: ignore[arg-type]
                            Remote({"exec-flaky": flaky, "exec-spare": spare}))
    state = pool.states[0]

    async def chat_on_flaky() -> str:
        state.last_pick = -1  # the flaky backend goes first
        chat = Chat("r-4", MODEL, [Message("user", "hi")], Sampling(8, 0.0, 1.0), [],
                    common_pb2.SamplingParams())
        job = Job(pool.resolve([MODEL]), chat)
        assert job.resolution.candidates[0] is state
        return "".join([p.text async for _, p in executor.stream(job, timeout=None)])

    for _ in range(2):
        assert await chat_on_flaky() == "Hello there"  # failed over to the spare
    assert state.healthy, "two failures the backend answered with do not open its circuit"
    flaky.error = None
    assert await chat_on_flaky() == "Hello there"
    assert len(flaky.asked) == 3, "the flaky backend answered this one itself"
    flaky.error = Unavailable("HTTP 500: again")
    for _ in range(2):
        await chat_on_flaky()
    assert state.healthy, "the count starts again after a request it served"
    await chat_on_flaky()
    assert not state.healthy and "again" in state.detail, "the third in a row opens it"
    await pool.probe_all()
    assert state.healthy and state.failures == 0, "a good probe closes it and clears the count"


async def test_a_backend_that_cannot_be_reached_is_down_at_once() -> None:
    pool, texts = await run({"exec-gone": Engine(Unreachable("connection refused")),
                             "exec-there": Engine()})
    assert "".join(texts) == "Hello there"
    assert not pool.states[0].healthy and pool.states[0].detail == "connection refused"


async def test_a_model_gone_from_a_backend_fails_over_and_is_forgotten_there() -> None:
    gone = Engine(FailedPrecondition("model 'executor-model' is not installed: ollama pull it"))
    pool, texts = await run({"exec-gone": gone, "exec-here": Engine()})
    assert "".join(texts) == "Hello there"
    state = pool.states[0]
    assert state.healthy, "the backend still serves its other models"
    assert [s.name for s in pool.resolve([MODEL]).candidates] == ["exec-here"]
    with pytest.raises(Unavailable) as caught:  # the backend's state, not the caller's fault
        await run({"exec-only": Engine(FailedPrecondition("refused the API key"))})
    assert "exec-only: refused the API key" in caught.value.message


async def test_a_stream_that_fails_is_not_counted_as_tokens() -> None:
    counted = {"model": MODEL, "backend": "exec-d", "backend_type": "ollama"}
    with pytest.raises(Unavailable) as caught:
        await run({"exec-d": Engine(Unavailable("refused"))})
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert sample("upcoach_engine_generated_tokens_total", **counted) == 0


FALLBACK = "executor-fallback"


async def chain_run(engines: dict[str, tuple[ChatEngine, tuple[str, ...]]],
                    chain: tuple[str, ...] = (MODEL, FALLBACK)) -> tuple[Served, list[str]]:
    """A chat for MODEL with FALLBACK next in its chain; (who answered, texts)."""
    async def prober(config: BackendConfig) -> EngineHealth:
        return EngineHealth(True, tuple(config.models))

    pool = BackendPool([backend(name, models) for name, (_, models) in engines.items()], prober,
                       interval=60)
    await pool.probe_all()
    chat = Chat("r-2", MODEL, [Message("user", "hi")], Sampling(8, 0.0, 1.0), [],
                common_pb2.SamplingParams())
    executor = ChatExecutor(None, pool,  # type: ignore[arg-type]
                            Remote({name: engine for name, (engine, _) in engines.items()}))
    answered: list[Served] = []
    texts = []
    async for served, piece in executor.stream(Job(pool.resolve(list(chain)), chat),
                                               timeout=None):
        answered.append(served)
        texts.append(piece.text)
    return answered[0], texts


async def test_when_every_backend_of_the_model_fails_the_next_model_of_the_chain_answers(
        ) -> None:
    down, busy, spare = Engine(Unavailable("refused")), Engine(ResourceExhausted("busy")), Engine()
    served, texts = await chain_run({"chain-a": (down, (MODEL,)), "chain-b": (busy, (MODEL,)),
                                     "chain-c": (spare, (FALLBACK,))})
    assert "".join(texts) == "Hello there"
    assert (served.backend, served.model, served.skipped) == ("chain-c", FALLBACK, [MODEL])
    assert (down.asked, busy.asked, spare.asked) == ([MODEL], [MODEL], [FALLBACK])


async def test_a_backend_that_failed_is_not_tried_again_for_the_next_model() -> None:
    both = Engine(ResourceExhausted("busy", retry_after_s=2))
    with pytest.raises(ResourceExhausted) as caught:
        await chain_run({"chain-d": (both, (MODEL, FALLBACK))})
    assert both.asked == [MODEL]
    assert caught.value.retry_after_s == 2


async def test_a_model_whose_backends_were_all_tried_is_passed_over_for_the_next() -> None:
    third = "executor-third"
    busy, spare = Engine(ResourceExhausted("busy", retry_after_s=2)), Engine()
    served, texts = await chain_run({"chain-g": (busy, (MODEL, FALLBACK)),
                                     "chain-h": (spare, (third,))}, (MODEL, FALLBACK, third))
    assert "".join(texts) == "Hello there"
    assert (served.backend, served.model, served.skipped) == ("chain-h", third, [MODEL, FALLBACK])
    assert (busy.asked, spare.asked) == ([MODEL], [third])


async def test_a_model_gone_from_its_only_backend_falls_back_to_the_next_model() -> None:
    class GoneModel(Engine):
        async def stream(self, model, messages, sampling):
            if model == MODEL:
                self.asked.append(model)
                raise FailedPrecondition(f"model {model!r} is not installed: ollama pull it")
            async for item in super().stream(model, messages, sampling):
                yield item

    ollama = GoneModel()
    served, texts = await chain_run({"chain-i": (ollama, (MODEL, FALLBACK))})
    assert "".join(texts) == "Hello there"
    assert (served.backend, served.model) == ("chain-i", FALLBACK)
    assert ollama.asked == [MODEL, FALLBACK]


async def test_when_the_whole_chain_fails_the_error_names_every_model() -> None:
    with pytest.raises(Unavailable) as caught:
        await chain_run({"chain-e": (Engine(Unavailable("refused")), (MODEL,)),
                         "chain-f": (Engine(Unavailable("reset")), (FALLBACK,))})
    assert f"{MODEL} or {FALLBACK}" in caught.value.message
    assert "chain-e: refused" in caught.value.message and "chain-f: reset" in caught.value.message


class SlowlyFailingStub:
    """The generation service's stub: each call takes 0.2 s, then is UNAVAILABLE; records the
    timeout each call was given."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def GenerateStream(self, request, timeout: float):
        self.timeouts.append(timeout)
        return FailingCall()


class FailingCall:
    """A streaming call that fails after 0.2 s without a message."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(0.2)
        raise Unavailable("refused")

    def cancel(self) -> None:
        pass


async def test_each_attempt_gets_what_is_left_of_the_callers_time() -> None:
    async def prober(config: BackendConfig) -> EngineHealth:
        return EngineHealth(True, (MODEL,))

    configs = [BackendConfig(name=f"in-{i}", type="embedded", url=None, models=[MODEL])
               for i in range(2)]
    pool = BackendPool(configs, prober, interval=60)
    await pool.probe_all()
    stub = SlowlyFailingStub()
    chat = Chat("r-3", MODEL, [Message("user", "hi")], Sampling(8, 0.0, 1.0), [],
                common_pb2.SamplingParams())
    executor = ChatExecutor(stub, pool, Remote({}))  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        _ = [p async for p in executor.stream(Job(pool.resolve([MODEL]), chat), timeout=10.0)]
    first, second = stub.timeouts
    assert first == pytest.approx(10.0, abs=0.05) and second <= first - 0.15
