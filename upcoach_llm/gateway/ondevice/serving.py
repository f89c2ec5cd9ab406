"""Asks the model registry (edge models) and the router (hybrid decision), reshapes the reply."""

from __future__ import annotations

from upcoach_llm.api import common_pb2, model_registry_pb2, router_pb2
from upcoach_llm.api.names import (
    INFERENCE_MODE_VALUES,
    INFERENCE_TARGET_NAMES,
    PLATFORM_VALUES,
    ROLE_VALUES,
    SAFETY_CATEGORY_NAMES,
)
from upcoach_llm.common.locales import locale_fields
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.fields import CHAT
from upcoach_llm.gateway.ondevice.protocol import (
    DecideRequest,
    DecideResponse,
    EdgeFormat,
    EdgeModel,
    EdgeModelsResponse,
    EdgeQuery,
)
from upcoach_llm.gateway.upstream import call_unary


async def edge_models(deps: Dependencies, query: EdgeQuery) -> EdgeModelsResponse:
    reply = await call_unary(deps.upstream.registry.ListEdgeModels(
        model_registry_pb2.ListEdgeModelsRequest(platform=PLATFORM_VALUES[query.platform],
                                                 ram_gb=query.ram_gb),
        timeout=deps.settings.upstream_timeout_s))
    return EdgeModelsResponse(
        platform=query.platform, ram_gb=query.ram_gb,
        default_model=reply.default_model_id or None,
        models=[EdgeModel(
            id=m.id, name=m.name, description=m.description, platforms=list(m.platforms),
            capabilities=list(m.capabilities), max_context=m.max_context,
            min_device_ram_gb=m.min_device_ram_gb,
            formats=[EdgeFormat(format=f.format, url=f.url, size_mb=f.size_mb,
                                quantization=f.quantization or None, sha256=f.sha256 or None)
                     for f in m.formats]) for m in reply.models])


async def decide(deps: Dependencies, body: DecideRequest,
                 locales: tuple[str, ...]) -> DecideResponse:
    """The router's decision on the prompt, or on the conversation: exactly one is sent."""
    sent = body.model_fields_set & {"prompt", "messages"}
    if len(sent) != 1:
        reason = "send either prompt or messages, not both" if sent else "field required"
        raise APIError(400, f"prompt: {reason}", param="prompt", code="invalid_value")
    field = next(iter(sent))
    if getattr(body, field) is None:
        raise APIError(400, f"{field}: must not be null or empty", param=field,
                       code="invalid_value")
    request = router_pb2.DecideInferenceRequest(
        mode=INFERENCE_MODE_VALUES[body.mode], prompt=body.prompt or "",
        server_available=body.server_available, on_device_available=body.on_device_available,
        messages=[common_pb2.ChatMessage(role=ROLE_VALUES[m.role_name()], content=m.text())
                  for m in body.messages or ()], feature=body.feature or "",
        coaching_context=body.context_type or "", **locale_fields(locales))
    if body.on_device_max_prompt_length is not None:
        request.on_device_max_prompt_length = body.on_device_max_prompt_length
    reply = await call_unary(deps.upstream.router.DecideInference(
        request, timeout=deps.settings.upstream_timeout_s), CHAT)
    target = INFERENCE_TARGET_NAMES.get(reply.target, "server")
    return DecideResponse(target=target, use_on_device=target == "on_device",
                          reason=reply.reason, simple_query=reply.simple_query,
                          safety_category=SAFETY_CATEGORY_NAMES.get(reply.safety_category),
                          crisis_response=reply.crisis_response or None,
                          edge_model=reply.edge_model or None, feature=reply.feature or None)
