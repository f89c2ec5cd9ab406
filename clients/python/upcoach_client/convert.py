"""Between the client's typed values and the upcoach.llm.v1 protobuf messages.

Both clients (sync and asyncio) build their requests and read their replies here, so they differ
only in how they call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from upcoach_client.api import (
    common_pb2,
    embedding_pb2,
    model_registry_pb2,
    router_pb2,
)
from upcoach_client.api.names import (
    BACKEND_TYPE_NAMES,
    FINISH_REASON_NAMES,
    INFERENCE_MODE_VALUES,
    INFERENCE_MODES,
    INFERENCE_TARGET_NAMES,
    MODEL_KIND_NAMES,
    MODEL_KIND_VALUES,
    PLATFORM_VALUES,
    ROLE_VALUES,
    SAFETY_CATEGORY_NAMES,
)
from upcoach_client.types import (
    Availability,
    BackendInfo,
    ChatChunk,
    ChatReply,
    Decision,
    EdgeFormat,
    EdgeModelInfo,
    EdgeModels,
    Embeddings,
    Message,
    MessageLike,
    ModelInfo,
    PullStep,
    Route,
    SearchHit,
    Usage,
)


def as_messages(messages: Iterable[MessageLike]) -> list[Message]:
    """Accepts Message, {"role", "content"} mappings or (role, content) pairs."""
    result = []
    for item in messages:
        if isinstance(item, Message):
            result.append(item)
        elif isinstance(item, Mapping):
            result.append(Message(role=str(item["role"]), content=str(item["content"])))
        else:
            role, content = item
            result.append(Message(role=str(role), content=str(content)))
    return result


def messages_proto(messages: list[Message]) -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=ROLE_VALUES.get(m.role, common_pb2.ROLE_UNSPECIFIED),
                                   content=m.content) for m in messages]


def sampling_proto(max_tokens: int | None = None, temperature: float | None = None,
                   top_p: float | None = None, stop: Iterable[str] = (),
                   seed: int | None = None) -> common_pb2.SamplingParams:
    """Only the fields given are set; the server fills in the rest."""
    params = common_pb2.SamplingParams(stop=list(stop))
    for name, value in (("max_tokens", max_tokens), ("temperature", temperature),
                        ("top_p", top_p), ("seed", seed)):
        if value is not None:
            setattr(params, name, value)
    return params


def chat_request(messages: list[Message], *, model: str = "", feature: str = "",
                 coaching_context: str = "", request_id: str = "", locale: str = "",
                 more_locales: Sequence[str] = (), **sampling: Any,
                 ) -> router_pb2.ChatStreamRequest:
    return router_pb2.ChatStreamRequest(
        request_id=request_id, model=model, feature=feature, coaching_context=coaching_context,
        messages=messages_proto(messages), sampling=sampling_proto(**sampling), locale=locale,
        more_locales=list(more_locales))


def usage(proto: common_pb2.Usage) -> Usage:
    return Usage(proto.prompt_tokens, proto.completion_tokens, proto.total_tokens,
                 proto.time_to_first_token_ms, proto.generation_ms)


def route(proto: router_pb2.RouteDecision) -> Route:
    return Route(proto.requested_model, proto.model, proto.backend, proto.reason,
                 tuple(proto.fallbacks_skipped))


def chunk(proto: router_pb2.ChatStreamResponse) -> ChatChunk:
    last = proto.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    return ChatChunk(text=proto.text, route=route(proto.route) if proto.HasField("route") else None,
                     finish_reason=FINISH_REASON_NAMES.get(proto.finish_reason) if last else None,
                     usage=usage(proto.usage) if last else None,
                     safety_category=SAFETY_CATEGORY_NAMES.get(proto.safety_category))


def decide_request(mode: str, prompt: str, server_available: bool, on_device_available: bool,
                   max_prompt_length: int | None, messages: list[Message] | None = None,
                   locale: str = "", more_locales: Sequence[str] = (),
                   feature: str = "", coaching_context: str = "",
                   ) -> router_pb2.DecideInferenceRequest:
    """With messages (the conversation, read whole by the crisis check), prompt stays empty."""
    if mode not in INFERENCE_MODE_VALUES:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(INFERENCE_MODES)}")
    if prompt and messages:
        raise ValueError("send either prompt or messages, not both")
    request = router_pb2.DecideInferenceRequest(
        mode=INFERENCE_MODE_VALUES[mode], prompt=prompt, server_available=server_available,
        on_device_available=on_device_available, messages=messages_proto(messages or []),
        locale=locale, more_locales=list(more_locales), feature=feature,
        coaching_context=coaching_context)
    if max_prompt_length is not None:
        request.on_device_max_prompt_length = max_prompt_length
    return request


def decision(proto: router_pb2.DecideInferenceResponse) -> Decision:
    target = INFERENCE_TARGET_NAMES.get(proto.target, "server")
    return Decision(target=target, reason=proto.reason, simple_query=proto.simple_query,
                    safety_category=SAFETY_CATEGORY_NAMES.get(proto.safety_category),
                    crisis_response=proto.crisis_response or None,
                    edge_model=proto.edge_model or None, feature=proto.feature or None)


def backend(proto: router_pb2.Backend) -> BackendInfo:
    return BackendInfo(name=proto.name, type=BACKEND_TYPE_NAMES.get(proto.type, "unknown"),
                       url=proto.url, healthy=proto.healthy, outstanding=proto.outstanding,
                       detail=proto.detail, models=tuple(proto.models))


def embed_request(texts: Iterable[str], model: str) -> embedding_pb2.EmbedRequest:
    return embedding_pb2.EmbedRequest(model=model, texts=list(texts))


def embeddings(proto: embedding_pb2.EmbedResponse) -> Embeddings:
    return Embeddings(model=proto.model, vectors=[list(e.values) for e in proto.embeddings],
                      dimensions=proto.dimensions, prompt_tokens=proto.prompt_tokens)


def hits(proto: embedding_pb2.SearchContentResponse) -> list[SearchHit]:
    return [SearchHit(id=h.item.id, category=h.item.category, title=h.item.title,
                      text=h.item.text, tags=tuple(h.item.tags), score=h.score)
            for h in proto.hits]


def list_models_request(kind: str | None) -> model_registry_pb2.ListModelsRequest:
    if kind is not None and kind not in MODEL_KIND_VALUES:
        raise ValueError(f"kind: {kind!r} is not chat or embedding")
    return model_registry_pb2.ListModelsRequest(kind=MODEL_KIND_VALUES.get(kind or "", 0))


def model(proto: model_registry_pb2.Model) -> ModelInfo:
    return ModelInfo(
        name=proto.name, description=proto.description, kind=MODEL_KIND_NAMES.get(proto.kind, ""),
        required=proto.required, size_bytes=proto.size_bytes, served=proto.served,
        use_cases=tuple(proto.use_cases),
        availability=tuple(Availability(a.backend, BACKEND_TYPE_NAMES.get(a.type, "unknown"),
                                        a.available, a.detail) for a in proto.availability))


def edge_request(platform: str, ram_gb: float) -> model_registry_pb2.ListEdgeModelsRequest:
    """``platform`` as the proto names it (ios, android; any case)."""
    value = PLATFORM_VALUES.get(platform.lower())
    if value is None:
        raise ValueError(f"platform: {platform!r} is not {' or '.join(PLATFORM_VALUES)}")
    return model_registry_pb2.ListEdgeModelsRequest(platform=value, ram_gb=ram_gb)


def edge_models(proto: model_registry_pb2.ListEdgeModelsResponse) -> EdgeModels:
    return EdgeModels(default_model_id=proto.default_model_id, models=tuple(
        EdgeModelInfo(id=m.id, name=m.name, platforms=tuple(m.platforms),
                      formats=tuple(EdgeFormat(f.format, f.url, f.size_mb, f.quantization,
                                               f.sha256) for f in m.formats),
                      max_context=m.max_context, min_device_ram_gb=m.min_device_ram_gb)
        for m in proto.models))


def pull_step(proto: model_registry_pb2.PullModelResponse) -> PullStep:
    return PullStep(proto.status, proto.digest, proto.completed, proto.total, proto.done)


class ReplyJoiner:
    """Joins a chunk stream into one reply: ``add`` each chunk; the last returns the reply."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._first: ChatChunk | None = None

    def add(self, item: ChatChunk) -> ChatReply | None:
        self._first = self._first or item
        self._parts.append(item.text)
        if item.finish_reason is None:
            return None
        return ChatReply(text="".join(self._parts), finish_reason=item.finish_reason,
                         usage=item.usage, source=item.source, route=self._first.route,
                         decision=self._first.decision,
                         safety_category=item.safety_category or self._first.safety_category)
