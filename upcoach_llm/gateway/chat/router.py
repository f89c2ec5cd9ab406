"""POST /v1/chat/completions and POST /api/chat/completions (the same handler).

The routes are declared here (OpenAPI, and FastAPI's answer to a request the fast path leaves to
it); well-formed requests are served by chat/fastpath.py with the same ``ChatServing``.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.gateway.chat.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
)
from upcoach_llm.gateway.chat.serving import ChatServing
from upcoach_llm.gateway.openapi import ErrorResponse, errors, event_stream

STREAM_DOC = {200: {
    "description": "A chat.completion, or with stream: true an SSE stream of "
                   "chat.completion.chunk events ending with data: [DONE]; an error after the "
                   "stream started is one error event before [DONE]",
    "content": {"text/event-stream": {"schema": event_stream(ChatCompletionChunk,
                                                             ErrorResponse)}}},
    **errors(400, 404, 429, 502, 503, 504)}
PATHS = {"/v1/chat/completions": "v1_chat_completions",
         "/api/chat/completions": "api_chat_completions"}


def build_router(serving: ChatServing) -> APIRouter:
    router = APIRouter(tags=["chat"])

    async def chat_completions(request: Request, body: ChatCompletionRequest) -> Response:
        return await serving.create(request, body)

    for path, operation in PATHS.items():
        router.add_api_route(path, chat_completions, methods=["POST"], operation_id=operation,
                             response_model=ChatCompletionResponse, responses=STREAM_DOC,
                             summary="Chat completion (OpenAI shape), streamed with stream: true")
    return router
