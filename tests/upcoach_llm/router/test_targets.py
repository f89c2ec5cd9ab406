"""A backend attempt as a ``chat {model}`` CLIENT span (tracing on): current while the backend is
called (the first read), with the GenAI attributes of the request and the reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.tracing import recorded_spans
from upcoach_llm.api import common_pb2
from upcoach_llm.common import tracing
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.common.errors import Unavailable
from upcoach_llm.engines.base import ChatEngine, Finished, TextChunk, TokenLogprob
from upcoach_llm.router.targets import Chat, Piece, engine_pieces, traced_pieces

BACKEND = BackendConfig(name="vllm", type="openai", url="http://vllm:8000/v1",
                        models=["mistral"])
CHAT = Chat("req-1", "mistral", [Message("user", "hi")], Sampling(64, 0.2, 0.9), [],
            common_pb2.SamplingParams())


async def _pieces(seen: list, fail: bool = False) -> AsyncIterator[Piece]:
    seen.append(tracing.trace_ids())  # what the call to the backend would carry
    yield Piece()
    yield Piece("Hello")
    if fail:
        raise Unavailable("backend went away")
    seen.append(tracing.trace_ids())  # later reads: the caller's context
    yield Piece(finish_reason=common_pb2.FINISH_REASON_LENGTH,
                usage=common_pb2.Usage(prompt_tokens=5, completion_tokens=2))


async def test_an_attempt_is_a_client_span_current_while_the_backend_is_called() -> None:
    seen: list = []
    with recorded_spans() as spans, tracing.tracer().start_as_current_span("rpc") as parent:
        pieces = [p async for p in traced_pieces(_pieces(seen), BACKEND, CHAT)]
        assert tracing.trace_ids()[1] == f"{parent.get_span_context().span_id:016x}"
    assert len(pieces) == 3
    [span] = [s for s in spans.get_finished_spans() if s.name == "chat mistral"]
    assert span.kind == SpanKind.CLIENT
    assert span.parent.span_id == parent.get_span_context().span_id
    trace_id = f"{span.context.trace_id:032x}"
    assert seen == [(trace_id, f"{span.context.span_id:016x}"),
                    (trace_id, f"{parent.get_span_context().span_id:016x}")]
    attributes = span.attributes
    assert attributes[tracing.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[tracing.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[tracing.GEN_AI_REQUEST_MODEL] == "mistral"
    assert attributes[tracing.GEN_AI_RESPONSE_MODEL] == "mistral"
    assert attributes[tracing.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attributes[tracing.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attributes[tracing.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert attributes[tracing.GEN_AI_USAGE_INPUT_TOKENS] == 5
    assert attributes[tracing.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert attributes[tracing.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert attributes["upcoach.backend"] == "vllm"
    assert [e.name for e in span.events] == [tracing.FIRST_TOKEN_EVENT]


async def test_a_failed_attempt_is_an_error_span() -> None:
    with recorded_spans() as spans, pytest.raises(Unavailable):
        async for _ in traced_pieces(_pieces([], fail=True), BACKEND, CHAT):
            pass
    [span] = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert "backend went away" in span.status.description


async def test_a_reader_that_stops_early_ends_the_span() -> None:
    with recorded_spans() as spans:
        stream = traced_pieces(_pieces([]), BACKEND, CHAT)
        await anext(stream)
        await stream.aclose()
    [span] = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.UNSET


class _LogprobEngine(ChatEngine):
    async def load(self) -> None:
        pass

    async def stream(self, model: str, messages: list[Message],
                     sampling: Sampling) -> AsyncIterator[TextChunk | Finished]:
        yield TextChunk("Hi", (TokenLogprob("Hi", -0.5, (("Hi", -0.5), ("Hey", -1.5))),))
        yield TextChunk(" you", (TokenLogprob(" you", -0.25),))
        yield Finished("stop", 3, 2, 1.0, 2.0)


async def test_a_remote_engines_logprobs_ride_on_its_pieces_and_join_in_order() -> None:
    pieces = [p async for p in engine_pieces(_LogprobEngine(), BACKEND, CHAT)]
    assert [p.text for p in pieces] == ["Hi", " you", ""]
    first = pieces[0].logprobs[0]
    assert (first.token, first.logprob) == ("Hi", -0.5)
    assert [(t.token, t.logprob) for t in first.top_logprobs] == [("Hi", -0.5), ("Hey", -1.5)]
    joined = Piece.joined(pieces[:2])
    assert joined.text == "Hi you" and [lp.token for lp in joined.logprobs] == ["Hi", " you"]
    assert Piece.joined(pieces[:1]) is pieces[0]
