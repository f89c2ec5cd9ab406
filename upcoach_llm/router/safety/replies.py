"""The router's answers to a flagged conversation: the crisis response in place of a model's,
with finish reason CONTENT_FILTER, the category, zero usage and a route through backend
``safety``."""

from __future__ import annotations

from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.router.safety.check import Flag

BACKEND = "safety"


def route(flag: Flag, model: str) -> router_pb2.RouteDecision:
    """The route a crisis response took: the model asked for (if any), backend ``safety``."""
    return router_pb2.RouteDecision(requested_model=model, model=model, backend=BACKEND,
                                    reason=f"safety {flag.category}")


def stream(flag: Flag, model: str) -> list[router_pb2.ChatStreamResponse]:
    """The crisis response as a stream: the route and the text, then the finish."""
    return [
        router_pb2.ChatStreamResponse(route=route(flag, model), text=flag.response,
                                      safety_category=flag.value),
        router_pb2.ChatStreamResponse(finish_reason=common_pb2.FINISH_REASON_CONTENT_FILTER,
                                      usage=common_pb2.Usage(), safety_category=flag.value),
    ]


def whole(flag: Flag, model: str) -> router_pb2.ChatResponse:
    """The crisis response as one reply."""
    return router_pb2.ChatResponse(route=route(flag, model), text=flag.response,
                                   finish_reason=common_pb2.FINISH_REASON_CONTENT_FILTER,
                                   usage=common_pb2.Usage(), safety_category=flag.value)
