"""From the REST request to the router's protobuf request, and the cache's canonical form."""

from __future__ import annotations

from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import ROLE_VALUES
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest


def messages(request: ChatCompletionRequest) -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=ROLE_VALUES[m.role_name()], content=m.text())
            for m in request.messages]


def sampling(request: ChatCompletionRequest) -> common_pb2.SamplingParams:
    """Only the fields the caller set; the services fill in their defaults."""
    params = common_pb2.SamplingParams(stop=request.stops())
    if request.token_limit() is not None:
        params.max_tokens = request.token_limit()
    if request.temperature is not None:
        params.temperature = request.temperature
    if request.top_p is not None:
        params.top_p = request.top_p
    if request.seed is not None:
        params.seed = request.seed
    return params


def canonical(request: ChatCompletionRequest, coaching_context: str) -> dict[str, Any]:
    """Everything that decides the reply, and nothing else (not stream, not user)."""
    values = {"max_tokens": request.token_limit(), "temperature": request.temperature,
              "top_p": request.top_p, "seed": request.seed, "stop": request.stops() or None}
    return {
        "model": request.model or "",
        "feature": request.feature or "",
        "coaching_context": coaching_context,
        "messages": [[m.role_name(), m.text()] for m in request.messages],
        "sampling": {k: float(v) if k in ("temperature", "top_p") else v
                     for k, v in values.items() if v is not None},
    }
