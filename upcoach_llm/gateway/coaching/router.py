"""POST /api/coaching/chat: the chat completion handler with the coaching context forwarded."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.gateway.chat.router import STREAM_DOC
from upcoach_llm.gateway.chat.serving import ChatServing
from upcoach_llm.gateway.coaching.protocol import CoachingChatRequest, CoachingChatResponse
from upcoach_llm.gateway.deps import Dependencies


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["coaching"])
    serving = ChatServing(deps)

    @router.post("/api/coaching/chat", response_model=CoachingChatResponse,
                 responses=STREAM_DOC,
                 summary="Coaching chat in a context (habits, goals, motivation, ...)")
    async def coaching_chat(request: Request, body: CoachingChatRequest) -> Response:
        return await serving.create(request, body, coaching_context=body.context_type,
                                    extra={"context_type": body.context_type})

    return router
