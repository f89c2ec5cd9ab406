"""GenerationService RPCs: validate, resolve the engine, relay its chunks as they come
(coalesced: common/coalesce.py).

Each request gets an id (the caller's, or a new one) set as the logging request id, so every
line about it, the engine's included, carries it. With tracing on, the call's span (the
interceptor's) gets the GenAI attributes: model, sampling, tokens, time to first token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import grpc

from upcoach_llm.api import generation_pb2, generation_pb2_grpc
from upcoach_llm.api.names import FINISH_REASON_VALUES
from upcoach_llm.common import tracing
from upcoach_llm.common.chat import (
    Message,
    Sampling,
    SamplingDefaults,
    messages_from_proto,
    sampling_from_proto,
)
from upcoach_llm.common.coalesce import coalesced
from upcoach_llm.common.fields import check_name, request_id_of
from upcoach_llm.common.logging import REQUEST_ID, get_logger
from upcoach_llm.common.metrics import EngineMeter, engine_meter
from upcoach_llm.engines.base import Finished, TextChunk
from upcoach_llm.generation.resolver import Resolver, Target

log = get_logger(__name__)


@dataclass(frozen=True)
class _Call:
    target: Target
    messages: list[Message]
    sampling: Sampling
    meter: EngineMeter


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    """upcoach.llm.v1.GenerationService on the engines the resolver knows."""

    def __init__(self, resolver: Resolver, defaults: SamplingDefaults,
                 flush_s: float = 0.0) -> None:
        self._resolver = resolver
        self._defaults = defaults
        self._flush_s = flush_s

    def _prepare(self, request: generation_pb2.GenerateStreamRequest
                 | generation_pb2.GenerateRequest) -> _Call:
        REQUEST_ID.set(request_id_of(request.request_id))
        target = self._resolver.resolve(check_name("model", request.model),
                                        check_name("backend", request.backend))
        call = _Call(target, messages_from_proto(request.messages),
                     sampling_from_proto(request.sampling, self._defaults),
                     engine_meter(target.model, target.backend,
                                  self._resolver.backends.get(target.backend).type))
        log.info("generation started", extra={"fields": {
            "model": target.model, "backend": target.backend, "messages": len(call.messages),
            "max_tokens": call.sampling.max_tokens, "temperature": call.sampling.temperature}})
        if tracing.ENABLED:
            tracing.set_attributes({
                **tracing.chat_request_attributes(request.model, call.sampling.max_tokens,
                                                  call.sampling.temperature),
                tracing.GEN_AI_RESPONSE_MODEL: target.model,
                tracing.GEN_AI_PROVIDER_NAME: self._resolver.backends.get(target.backend).type,
                "upcoach.backend": target.backend})
        return call

    def _run(self, call: _Call) -> AsyncIterator[TextChunk | Finished]:
        return call.target.engine.stream(call.target.engine_model, call.messages, call.sampling)

    async def GenerateStream(self, request: generation_pb2.GenerateStreamRequest,
                             context: grpc.aio.ServicerContext,
                             ) -> AsyncIterator[generation_pb2.GenerateStreamResponse]:
        call = self._prepare(request)
        response = generation_pb2.GenerateStreamResponse
        items = coalesced(self._run(call), self._flush_s, text_of=_text_of,
                          joined=TextChunk.joined, on_done=context.add_done_callback)
        async with aclosing(items):
            async for item in items:
                if isinstance(item, Finished):
                    _log_finished(call, item)
                    yield response(finish_reason=FINISH_REASON_VALUES[item.reason],
                                   usage=item.usage())
                else:
                    yield response(text=item.text,
                                   logprobs=[lp.to_proto() for lp in item.logprobs])

    async def Generate(self, request: generation_pb2.GenerateRequest,
                       context: grpc.aio.ServicerContext) -> generation_pb2.GenerateResponse:
        call = self._prepare(request)
        parts: list[TextChunk] = []
        async with aclosing(self._run(call)) as items:
            async for item in items:
                if isinstance(item, Finished):
                    _log_finished(call, item)
                    whole = TextChunk.joined(parts) if parts else TextChunk("")
                    return generation_pb2.GenerateResponse(
                        text=whole.text, finish_reason=FINISH_REASON_VALUES[item.reason],
                        usage=item.usage(), logprobs=[lp.to_proto() for lp in whole.logprobs])
                parts.append(item)
        raise RuntimeError("the engine ended its stream without Finished")


def _text_of(item: TextChunk | Finished) -> str | None:
    return item.text if isinstance(item, TextChunk) else None


def _log_finished(call: _Call, finished: Finished) -> None:
    """Logs the generation's usage and counts it in the engine metrics."""
    call.meter.finished(finished.completion_tokens, finished.time_to_first_token_ms)
    decode_ms = finished.generation_ms - finished.time_to_first_token_ms
    rate = (finished.completion_tokens - 1) / decode_ms * 1000 if decode_ms > 0 else 0.0
    log.info("generation finished", extra={"fields": {
        "model": call.target.model, "backend": call.target.backend, "finish": finished.reason,
        "prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
        "ttft_ms": round(finished.time_to_first_token_ms, 1),
        "generation_ms": round(finished.generation_ms, 1),
        "tokens_per_s": round(max(rate, 0.0), 1)}})
    if tracing.ENABLED:
        tracing.set_attributes({
            tracing.GEN_AI_RESPONSE_FINISH_REASONS: [finished.reason],
            tracing.GEN_AI_USAGE_INPUT_TOKENS: finished.prompt_tokens,
            tracing.GEN_AI_USAGE_OUTPUT_TOKENS: finished.completion_tokens,
            tracing.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: finished.time_to_first_token_ms / 1000})
