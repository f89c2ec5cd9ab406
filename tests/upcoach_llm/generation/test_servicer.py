"""GenerationService over a real in-process grpc.aio server (port 0, the shared error interceptor)
on the real SmolLM2 engine: replies, every bad input's status code, cancellation and deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from upcoach_llm.api import common_pb2, generation_pb2, generation_pb2_grpc
from upcoach_llm.common.backends import BackendConfig, BackendsFile, load_backends
from upcoach_llm.common.catalog import load_models
from upcoach_llm.common.interceptor import ErrorInterceptor, ReadinessGate
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.engines.llama_cpp_engine import LlamaCppEngine, _Job
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings, packaged_model_path
from upcoach_llm.generation.resolver import Resolver
from upcoach_llm.generation.service import GenerationService
from upcoach_llm.generation.settings import GenerationSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODEL = "smollm2-135m-instruct"
N_CTX = 1024
USER = common_pb2.ROLE_USER
STORY = [common_pb2.ChatMessage(role=USER, content="Write a long story about a runner.")]


class Harness:
    """The server, a stub on it, and the engine behind it (to watch its context pool)."""

    def __init__(self, stub: generation_pb2_grpc.GenerationServiceStub,
                 engine: LlamaCppEngine) -> None:
        self.stub = stub
        self.engine = engine

    def job(self) -> _Job:
        """The generation running on the engine's one context."""
        return next(iter(self.engine._jobs))

    async def context_back(self, timeout: float = 30.0) -> None:
        started = time.perf_counter()
        while self.engine.pool is not None and self.engine.pool.free < 1:
            assert time.perf_counter() - started < timeout, "the llama context did not come back"
            await asyncio.sleep(0.005)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def harness() -> AsyncIterator[Harness]:
    catalog = load_models()
    configured = load_backends(catalog)
    backends = BackendsFile(backends=[*configured.backends, BackendConfig(
        name="ollama-dev", type="ollama", url="http://127.0.0.1:9", models=[MODEL])])
    engine = LlamaCppEngine(LlamaSettings(model_path=packaged_model_path(), n_ctx=N_CTX,
                                          n_threads=2, parallel=1))
    service = GenerationService(Resolver(catalog, backends, {"embedded": engine}),
                                GenerationSettings.from_env())
    gate = ReadinessGate()
    server = grpc.aio.server(interceptors=[ErrorInterceptor(gate, InternalAuth.disabled())])
    service.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await service.start()
    gate.ready = True
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Harness(generation_pb2_grpc.GenerationServiceStub(channel), engine)
    await server.stop(None)
    await service.stop()


def stream_request(**fields: object) -> generation_pb2.GenerateStreamRequest:
    fields.setdefault("model", MODEL)
    fields.setdefault("messages", STORY)
    return generation_pb2.GenerateStreamRequest(**fields)


def greedy(max_tokens: int) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0.0)


async def test_stream_sends_text_deltas_then_finish_and_usage(harness: Harness) -> None:
    replies = [r async for r in harness.stub.GenerateStream(
        stream_request(request_id="t-1", sampling=greedy(16)))]
    assert len(replies) >= 5
    *deltas, last = replies
    assert all(r.text for r in deltas)
    assert all(r.finish_reason == common_pb2.FINISH_REASON_UNSPECIFIED for r in deltas)
    assert not any(r.HasField("usage") for r in deltas)
    assert last.finish_reason == common_pb2.FINISH_REASON_LENGTH
    usage = last.usage
    assert usage.completion_tokens == 16
    assert usage.total_tokens == usage.prompt_tokens + 16
    assert 0 < usage.time_to_first_token_ms <= usage.generation_ms

    whole = await harness.stub.Generate(generation_pb2.GenerateRequest(
        model=MODEL, backend="embedded", messages=STORY, sampling=greedy(16)))
    assert whole.text == "".join(r.text for r in replies)
    assert whole.finish_reason == common_pb2.FINISH_REASON_LENGTH
    assert whole.usage.completion_tokens == 16


async def test_finished_generations_are_counted_in_the_engine_metrics(harness: Harness) -> None:
    labels = {"model": MODEL, "backend": "embedded", "backend_type": "embedded"}

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    tokens = sample("upcoach_engine_generated_tokens_total")
    timed = sample("upcoach_engine_time_to_first_token_seconds_count")
    [r async for r in harness.stub.GenerateStream(stream_request(sampling=greedy(5)))]
    await harness.stub.Generate(generation_pb2.GenerateRequest(
        model=MODEL, messages=STORY, sampling=greedy(4)))
    assert sample("upcoach_engine_generated_tokens_total") == tokens + 9
    assert sample("upcoach_engine_time_to_first_token_seconds_count") == timed + 2


def _bad(**fields: object) -> dict[str, object]:
    return fields


BAD_INPUTS = [
    ("no messages", _bad(messages=[]), grpc.StatusCode.INVALID_ARGUMENT, "messages"),
    ("empty content", _bad(messages=[common_pb2.ChatMessage(role=USER, content="  ")]),
     grpc.StatusCode.INVALID_ARGUMENT, "messages[0].content"),
    ("role unspecified", _bad(messages=[common_pb2.ChatMessage(content="hi")]),
     grpc.StatusCode.INVALID_ARGUMENT, "messages[0].role"),
    ("max_tokens 0", _bad(sampling=common_pb2.SamplingParams(max_tokens=0)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.max_tokens"),
    ("max_tokens negative", _bad(sampling=common_pb2.SamplingParams(max_tokens=-3)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.max_tokens"),
    ("max_tokens past the context", _bad(sampling=common_pb2.SamplingParams(max_tokens=3000)),
     grpc.StatusCode.OUT_OF_RANGE, "sampling.max_tokens"),
    ("prompt past the context",
     _bad(messages=[common_pb2.ChatMessage(role=USER, content="habit " * N_CTX)]),
     grpc.StatusCode.OUT_OF_RANGE, "messages"),
    ("temperature 3", _bad(sampling=common_pb2.SamplingParams(temperature=3.0)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.temperature"),
    ("top_p 0", _bad(sampling=common_pb2.SamplingParams(top_p=0.0)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.top_p"),
    ("five stop sequences", _bad(sampling=common_pb2.SamplingParams(stop=["a"] * 5)),
     grpc.StatusCode.INVALID_ARGUMENT, "sampling.stop"),
    ("unknown model", _bad(model="gpt-9"), grpc.StatusCode.NOT_FOUND, "'gpt-9'"),
    ("no model", _bad(model=""), grpc.StatusCode.INVALID_ARGUMENT, "model"),
    ("embedding model", _bad(model="all-minilm-l6-v2"), grpc.StatusCode.INVALID_ARGUMENT,
     "'all-minilm-l6-v2'"),
    ("model not served here", _bad(model="mistral"), grpc.StatusCode.NOT_FOUND, "'mistral'"),
    ("unknown backend", _bad(backend="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
    ("backend without an engine", _bad(backend="ollama-dev"), grpc.StatusCode.UNAVAILABLE,
     "'ollama-dev'"),
]


@pytest.mark.parametrize(("fields", "code", "named"), [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
async def test_bad_input_gets_its_status_and_the_server_keeps_serving(
        harness: Harness, fields: dict[str, object], code: grpc.StatusCode, named: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        async for _ in harness.stub.GenerateStream(stream_request(**fields)):
            pass
    assert streamed.value.code() == code
    assert named in streamed.value.details()

    unary = {"model": MODEL, "messages": STORY, **fields}
    with pytest.raises(grpc.aio.AioRpcError) as whole:
        await harness.stub.Generate(generation_pb2.GenerateRequest(**unary))
    assert whole.value.code() == code
    assert named in whole.value.details()

    reply = await harness.stub.Generate(generation_pb2.GenerateRequest(
        model=MODEL, messages=STORY, sampling=greedy(1)))
    assert reply.usage.completion_tokens == 1


async def test_a_cancelled_call_frees_the_engine_at_once(harness: Harness) -> None:
    call = harness.stub.GenerateStream(stream_request(sampling=greedy(500)))
    received = 0
    async for reply in call:
        received += 1
        assert reply.text
        if received == 3:
            break
    job = harness.job()
    call.cancel()
    at_cancel = job.generated
    await harness.context_back()
    assert job.abandoned and job.generated <= at_cancel + 2
    reply = await harness.stub.Generate(generation_pb2.GenerateRequest(
        model=MODEL, messages=STORY, sampling=greedy(2)))
    assert reply.usage.completion_tokens == 2


async def test_a_passed_deadline_stops_generation(harness: Harness) -> None:
    jobs: list[_Job] = []
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        async for _ in harness.stub.GenerateStream(stream_request(sampling=greedy(900)),
                                                   timeout=3.0):
            jobs = jobs or [harness.job()]
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert jobs, "no token came before the deadline"
    at_deadline = jobs[0].generated
    await harness.context_back()
    assert jobs[0].abandoned and jobs[0].generated <= at_deadline + 2
