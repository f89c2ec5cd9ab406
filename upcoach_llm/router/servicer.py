"""RouterService handlers: route a chat, stream it from its backend, answer hybrid decisions.

The crisis check (router/safety/) comes first: a flagged chat is answered with the crisis
response in the request's ``locale`` (or the first of its ``more_locales`` it is written in).
DecideInference takes the conversation (``messages``) or, from old clients, one ``prompt``; both
at once is INVALID_ARGUMENT naming ``prompt``, so a client never wonders which one was read. With
messages, the crisis check reads every user message and the decision rule the last one. With a
``feature``, a server-only one (no edge model in features.yaml) is always the server's, and
otherwise the reply names the feature's edge model.

A streamed reply is coalesced (common/coalesce.py): the first piece at once, later text in as
few messages as the caller's pace and STREAM_FLUSH_MS allow. With tracing on, the plan is a
``router.decide`` span and each backend attempt a ``chat {model}`` span (router/targets.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from upcoach_llm.api import router_pb2, router_pb2_grpc
from upcoach_llm.api.names import BACKEND_TYPE_VALUES, INFERENCE_MODE_NAMES
from upcoach_llm.common import tracing
from upcoach_llm.common.chat import (
    SamplingDefaults,
    messages_from_proto,
    messages_to_proto,
    sampling_from_proto,
)
from upcoach_llm.common.coalesce import coalesced
from upcoach_llm.common.errors import InvalidArgument, ServiceError
from upcoach_llm.common.fields import check_name, check_text, request_id_of
from upcoach_llm.common.limits import MAX_PROMPT_CHARS
from upcoach_llm.common.locales import check_locales
from upcoach_llm.common.logging import get_logger
from upcoach_llm.router.backend_pool import BackendPool
from upcoach_llm.router.executor import ChatExecutor, Job, Served
from upcoach_llm.router.hybrid import decide
from upcoach_llm.router.policy import RouterPolicy
from upcoach_llm.router.routing import choose_model, feature_of, with_coaching_prompt
from upcoach_llm.router.safety import replies as crisis
from upcoach_llm.router.safety.check import Flag, SafetyCheck
from upcoach_llm.router.targets import Chat, Piece

log = get_logger(__name__)


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    """Plans each chat (model, fallbacks, backends) and runs it through the executor."""

    def __init__(self, policy: RouterPolicy, pool: BackendPool, executor: ChatExecutor,
                 defaults: SamplingDefaults, flush_s: float,
                 safety: SafetyCheck | None = None) -> None:
        self._policy = policy
        self._safety = safety or SafetyCheck.off()
        self._pool = pool
        self._executor = executor
        self._defaults = defaults
        self._flush_s = flush_s

    async def _plan(self, request: router_pb2.ChatStreamRequest | router_pb2.ChatRequest,
                    ) -> tuple[Job, router_pb2.RouteDecision]:
        request_id = request_id_of(request.request_id)
        _check_names(request)
        messages = messages_from_proto(request.messages)
        choice = choose_model(self._policy, model=request.model, feature=request.feature,
                              coaching_context=request.coaching_context, messages=messages)
        if request.coaching_context:
            messages = with_coaching_prompt(self._policy, request.coaching_context, messages)
        resolution = await self._pool.resolve_fresh(
            self._policy.catalog.fallback_chain(choice.model), pick=True)
        route = router_pb2.RouteDecision(
            requested_model=choice.model, model=resolution.model, reason=choice.reason,
            fallbacks_skipped=resolution.skipped)
        sampling = sampling_from_proto(request.sampling, self._defaults)
        job = Job(resolution, Chat(request_id, resolution.model, messages, sampling,
                                   messages_to_proto(messages), request.sampling))
        if log.isEnabledFor(logging.INFO):  # its fields cost more than the check at LOG_LEVEL=warn
            log.info("routed", extra={"fields": {
                "request_id": job.request_id, "requested": choice.model,
                "model": resolution.model, "reason": choice.reason, "skipped": resolution.skipped,
                "candidates": [s.name for s in resolution.candidates]}})
        return job, route

    async def _crisis(self, request: router_pb2.ChatStreamRequest | router_pb2.ChatRequest,
                      rpc: str) -> Flag | None:
        """The crisis check's flag on the conversation (validated first), or None."""
        _check_names(request)
        locales = check_locales(request.locale, request.more_locales)
        if not self._safety.enabled:
            return None
        messages_from_proto(request.messages)
        return await self._safety.conversation(request_id_of(request.request_id),
                                               request.messages, rpc, locales=locales)

    def _catalog_name(self, model: str) -> str:
        """The model asked for when the catalog has it, else "": a crisis response skips routing,
        and the name it carries must still be one the stack knows (it labels metrics)."""
        return model if self._policy.catalog.get(model) is not None else ""

    async def _traced_plan(self, request: router_pb2.ChatStreamRequest | router_pb2.ChatRequest,
                           ) -> tuple[Job, router_pb2.RouteDecision]:
        """``_plan`` in a ``router.decide`` span; the chat's GenAI attributes on the call's."""
        call = tracing.current_span()
        with tracing.internal_span("router.decide") as span:
            job, route = await self._plan(request)
            span.set_attributes({
                "upcoach.route.requested_model": route.requested_model,
                "upcoach.route.model": route.model, "upcoach.route.reason": route.reason,
                "upcoach.route.fallbacks_skipped": list(route.fallbacks_skipped),
                "upcoach.route.candidates": [s.name for s in job.resolution.candidates]})
        sampling = job.chat.sampling
        tracing.set_attributes({
            **tracing.chat_request_attributes(route.requested_model, sampling.max_tokens,
                                              sampling.temperature),
            tracing.GEN_AI_RESPONSE_MODEL: route.model}, call)
        return job, route

    async def ChatStream(self, request: router_pb2.ChatStreamRequest,
                         context: grpc.aio.ServicerContext,
                         ) -> AsyncIterator[router_pb2.ChatStreamResponse]:
        flag = await self._crisis(request, "ChatStream")
        if flag is not None:
            for reply in crisis.stream(flag, self._catalog_name(request.model)):
                yield reply
            return
        job, route = await (self._traced_plan(request) if tracing.ENABLED
                            else self._plan(request))
        served: list[Served] = []

        async def pieces() -> AsyncIterator[Piece]:
            async for answered, piece in self._executor.stream(job, context.time_remaining()):
                if not served:
                    served.append(answered)
                yield piece

        first = True
        async for piece in coalesced(pieces(), self._flush_s, text_of=_text_of,
                                     joined=Piece.joined, on_done=context.add_done_callback):
            reply = router_pb2.ChatStreamResponse(text=piece.text,
                                                  finish_reason=piece.finish_reason,
                                                  usage=piece.usage, logprobs=piece.logprobs)
            if first:
                _answered_by(route, served[0])  # failover happens before the first piece only
                reply.route.CopyFrom(route)
                first = False
            yield reply

    async def Chat(self, request: router_pb2.ChatRequest,
                   context: grpc.aio.ServicerContext) -> router_pb2.ChatResponse:
        flag = await self._crisis(request, "Chat")
        if flag is not None:
            return crisis.whole(flag, self._catalog_name(request.model))
        job, route = await (self._traced_plan(request) if tracing.ENABLED
                            else self._plan(request))
        answered, reply, last = await self._executor.generate(job, context.time_remaining())
        _answered_by(route, answered)
        return router_pb2.ChatResponse(route=route, text=reply.text,
                                       finish_reason=last.finish_reason, usage=last.usage,
                                       logprobs=reply.logprobs)

    async def Route(self, request: router_pb2.RouteRequest,
                    context: grpc.aio.ServicerContext) -> router_pb2.RouteResponse:
        _check_names(request)
        messages = messages_from_proto(request.messages) if request.messages else []
        # The crisis check first, as for a chat: a flagged conversation gets the crisis
        # response whatever its routing would say, so its category is never lost to an error.
        flag = await self._safety.conversation(request_id_of(""), request.messages, "Route",
                                               count=False)
        try:
            choice = choose_model(self._policy, model=request.model, feature=request.feature,
                                  coaching_context=request.coaching_context, messages=messages)
            resolution = await self._pool.resolve_fresh(
                self._policy.catalog.fallback_chain(choice.model))
        except ServiceError:
            if flag is None:
                raise
            return router_pb2.RouteResponse(safety_category=flag.value)
        return router_pb2.RouteResponse(route=router_pb2.RouteDecision(
            requested_model=choice.model, model=resolution.model,
            backend=resolution.candidates[0].name, reason=choice.reason,
            fallbacks_skipped=resolution.skipped), safety_category=flag.value if flag else 0)

    async def DecideInference(self, request: router_pb2.DecideInferenceRequest,
                              context: grpc.aio.ServicerContext,
                              ) -> router_pb2.DecideInferenceResponse:
        mode = INFERENCE_MODE_NAMES.get(request.mode or router_pb2.INFERENCE_MODE_AUTO)
        if mode is None:
            raise InvalidArgument(f"unknown inference mode {request.mode}", field="mode")
        locales = check_locales(request.locale, request.more_locales)
        name, source = feature_of(self._policy, check_name("feature", request.feature),
                                  check_name("coaching_context", request.coaching_context))
        feature = self._policy.features.row(name) if name else None
        prompt = _decided_prompt(request)
        limit = None
        if request.HasField("on_device_max_prompt_length"):
            if request.on_device_max_prompt_length <= 0:
                raise InvalidArgument("must be positive", field="on_device_max_prompt_length")
            limit = request.on_device_max_prompt_length
        decision = decide(mode, prompt=prompt, server_available=request.server_available,
                          on_device_available=request.on_device_available,
                          policy=self._policy.hybrid, max_prompt_length=limit)
        target = (router_pb2.INFERENCE_TARGET_ON_DEVICE if decision.on_device
                  else router_pb2.INFERENCE_TARGET_SERVER)
        if request.messages:
            flag = await self._safety.conversation(request_id_of(""), request.messages,
                                                   "DecideInference", locales=locales)
        else:
            flag = await self._safety.prompt(request_id_of(""), prompt, "DecideInference",
                                             locales=locales)
        if flag is not None:  # a crisis is never left to the device alone
            return router_pb2.DecideInferenceResponse(
                target=router_pb2.INFERENCE_TARGET_SERVER, reason=f"safety {flag.category}: "
                "the server answers with the crisis response", simple_query=decision.simple_query,
                safety_category=flag.value, crisis_response=flag.response)
        if feature is not None and feature.edge_model is None:  # the guide's "Server only"
            return router_pb2.DecideInferenceResponse(
                target=router_pb2.INFERENCE_TARGET_SERVER,
                reason=f"{source}feature {name}: server only (no edge model)",
                simple_query=decision.simple_query, feature=name)
        return router_pb2.DecideInferenceResponse(
            target=target, reason=decision.reason, simple_query=decision.simple_query,
            edge_model=feature.edge_model if feature is not None else "", feature=name)

    async def ListBackends(self, request: router_pb2.ListBackendsRequest,
                           context: grpc.aio.ServicerContext) -> router_pb2.ListBackendsResponse:
        return router_pb2.ListBackendsResponse(backends=[
            router_pb2.Backend(name=s.name, type=BACKEND_TYPE_VALUES[s.config.type],
                               url=s.config.url or "",
                               models=sorted(set(s.config.models) | s.installed),
                               healthy=s.healthy, outstanding=s.outstanding, detail=s.detail)
            for s in self._pool.states])


def _check_names(request: router_pb2.ChatRequest | router_pb2.ChatStreamRequest
                 | router_pb2.RouteRequest) -> None:
    for field in ("model", "feature", "coaching_context"):
        check_name(field, getattr(request, field))


def _decided_prompt(request: router_pb2.DecideInferenceRequest) -> str:
    """The text the decision rule looks at: the last user message of ``messages`` (validated
    as a chat's; empty, like an empty prompt, when none is), else ``prompt``."""
    if not request.messages:
        return check_text("prompt", request.prompt, MAX_PROMPT_CHARS)
    if request.prompt:
        raise InvalidArgument("send either prompt or messages, not both", field="prompt")
    messages = messages_from_proto(request.messages)
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def _answered_by(route: router_pb2.RouteDecision, served: Served) -> None:
    """The route as it was served: the backend, and the model when the chain moved on."""
    route.backend = served.backend
    if served.model != route.model:
        route.model = served.model
        route.fallbacks_skipped[:] = served.skipped


def _text_of(piece: Piece) -> str | None:
    return None if piece.finish_reason else piece.text
