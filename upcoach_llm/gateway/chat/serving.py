"""OpenAI chat completions (and the guide's coaching chat) rendered from the chat pipeline.

The pipeline (chat/pipeline.py) does the cache and the router call; this module turns its reply
into a ``chat.completion`` body or an SSE stream of ``chat.completion.chunk`` events ending with
``[DONE]``. A failure after the stream started is one error event before ``[DONE]``, a bug's
(logged with its traceback) included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from upcoach_llm.api.names import FINISH_REASON_NAMES
from upcoach_llm.gateway.chat import convert, render
from upcoach_llm.gateway.chat.pipeline import ChatPipeline, LiveStream, WholeReply
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.errors import APIError, log_bug
from upcoach_llm.gateway.relay import StreamFailed

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChatServing:
    """Serves chat completions and coaching chats."""

    def __init__(self, deps: Dependencies) -> None:
        self._pipeline = ChatPipeline(deps)

    async def create(self, request: Request, body: ChatCompletionRequest, *,
                     coaching_context: str = "", extra: dict[str, str] | None = None) -> Response:
        cid = render.completion_id()
        answer = await self._pipeline.answer(request, convert.turn(body, coaching_context),
                                             stream=bool(body.stream))
        if isinstance(answer, WholeReply):
            return _whole(answer, cid, extra, logprobs=bool(body.logprobs))
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_events(answer, cid, include_usage, logprobs=bool(body.logprobs)),
                                 media_type="text/event-stream",
                                 headers={**answer.headers, **SSE_HEADERS})


def _whole(answer: WholeReply, cid: str, extra: dict[str, str] | None, *,
           logprobs: bool) -> Response:
    reply = answer.reply
    content = render.completion(cid, reply.route.model, reply.text, answer.finish_reason,
                                render.usage(reply.usage.prompt_tokens,
                                             reply.usage.completion_tokens), extra,
                                render.logprobs(reply.logprobs) if logprobs else None)
    headers = answer.headers
    if reply.usage.generation_ms:
        headers = {**headers, "Server-Timing": render.server_timing(reply.usage)}
    return Response(content, media_type="application/json", headers=headers,
                    background=answer.after)


async def _events(live: LiveStream, cid: str, include_usage: bool, *,
                  logprobs: bool) -> AsyncIterator[bytes]:
    """The stream's messages as SSE chunks; a failure is one error event before [DONE]. The
    usage, when asked, is only on the last chunk (one without choices), as OpenAI sends it."""
    writer = render.ChunkWriter(cid, live.model, include_usage=include_usage)
    first = True
    try:
        async with contextlib.aclosing(live.messages()) as messages:
            async for message in messages:
                if first:
                    first = False
                    yield writer.role()
                if message.text:
                    yield writer.text(message.text, render.logprobs(message.logprobs)
                                      if logprobs else None)
                if message.finish_reason:
                    yield writer.finish(FINISH_REASON_NAMES.get(message.finish_reason, "stop"))
                    if message.usage.generation_ms:
                        yield render.timing_comment(message.usage)
                    if include_usage:
                        yield writer.usage_only(render.usage(message.usage.prompt_tokens,
                                                             message.usage.completion_tokens))
        yield render.DONE
    except StreamFailed as failure:
        yield render.event(failure.rest().body())
        yield render.DONE
    except Exception as exc:  # noqa: BLE001 - a bug: still an error event, not a cut stream
        log_bug("chat stream", exc)
        yield render.event(APIError(500, f"internal error: {type(exc).__name__}",
                                    code="internal").body())
        yield render.DONE
    finally:
        live.done()
