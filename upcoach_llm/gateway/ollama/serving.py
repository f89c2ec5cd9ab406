"""/api/chat and /api/generate rendered from the chat pipeline, as Ollama answers them.

The pipeline (chat/pipeline.py) does the cache, the router call and whatever else every chat goes
through; this module turns its reply into Ollama's JSON body, or (the default) an NDJSON stream,
``application/x-ndjson``. A failure before the stream starts is a real HTTP error; after, one
``{"error": "..."}`` line ends the stream, as Ollama does. A request without a prompt (no
messages, or an empty prompt) is Ollama's "load the model": the model is looked up in the catalog
(404 when unknown) and the answer is ``done_reason: "load"`` (``"unload"`` with keep_alive 0;
nothing is unloaded: the served models stay loaded).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from upcoach_llm.api import model_registry_pb2
from upcoach_llm.api.names import FINISH_REASON_NAMES
from upcoach_llm.gateway.chat.pipeline import ChatPipeline, LiveStream, WholeReply
from upcoach_llm.gateway.chat.render import server_timing
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.errors import APIError, log_bug
from upcoach_llm.gateway.fields import MODELS
from upcoach_llm.gateway.http.jsonbody import dumps
from upcoach_llm.gateway.ollama import convert, render
from upcoach_llm.gateway.ollama.protocol import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaStreamed,
    duration_seconds,
)
from upcoach_llm.gateway.relay import StreamFailed
from upcoach_llm.gateway.upstream import call_unary

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class OllamaChat:
    """Serves /api/chat and /api/generate."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps
        self._pipeline = ChatPipeline(deps)

    async def chat(self, request: Request, body: OllamaChatRequest) -> Response:
        return await self._answer(request, body, convert.chat_messages(body), render.CHAT)

    async def generate(self, request: Request, body: OllamaGenerateRequest) -> Response:
        pairs = convert.generate_messages(body) if body.prompt else []
        return await self._answer(request, body, pairs, render.GENERATE)

    async def _answer(self, request: Request, body: OllamaStreamed, pairs: list[tuple[str, str]],
                      kind: str) -> Response:
        started = time.perf_counter()
        if not pairs:
            return await self._load(body, kind, started)
        try:
            answer = await self._pipeline.answer(request, convert.turn(body, pairs),
                                                 stream=body.stream)
        except APIError as error:
            raise convert.ollama_error(error, generate=kind == render.GENERATE) from None
        if isinstance(answer, WholeReply):
            model = answer.reply.route.model or body.model  # "": a crisis reply, model unknown
            return _whole(answer, render.Writer(kind, model, started))
        writer = render.Writer(kind, answer.model or body.model, started)
        return StreamingResponse(_lines(answer, writer), media_type=render.NDJSON,
                                 headers={**answer.headers, **STREAM_HEADERS})

    async def _load(self, body: OllamaStreamed, kind: str, started: float) -> Response:
        """Ollama's answer to a request with nothing to answer: the model loaded (or unloaded);
        an embedding model is refused, as Ollama refuses it."""
        reply = await call_unary(self._deps.upstream.registry.GetModel(
            model_registry_pb2.GetModelRequest(name=body.model),
            timeout=self._deps.settings.upstream_timeout_s), MODELS)
        if reply.model.kind == model_registry_pb2.MODEL_KIND_EMBEDDING:
            verb = "generate" if kind == render.GENERATE else "chat"
            raise APIError(400, f'"{body.model}" does not support {verb}', param="model",
                           code="invalid_value")
        reason = "unload" if duration_seconds(body.keep_alive) == 0 else "load"
        return Response(render.Writer(kind, body.model, started).loaded(reason),
                        media_type="application/json")


def _whole(answer: WholeReply, writer: render.Writer) -> Response:
    reply = answer.reply
    reason = FINISH_REASON_NAMES.get(reply.finish_reason, "stop")
    content = dumps(writer.final(reason, reply.usage, reply.text, reply.logprobs))
    headers = answer.headers
    if reply.usage.generation_ms:
        headers = {**headers, "Server-Timing": server_timing(reply.usage)}
    return Response(content, media_type="application/json", headers=headers,
                    background=answer.after)


async def _lines(live: LiveStream, writer: render.Writer) -> AsyncIterator[bytes]:
    """The stream's messages as NDJSON lines; a failure is one error line."""
    try:
        async with contextlib.aclosing(live.messages()) as messages:
            async for message in messages:
                if message.finish_reason:
                    reason = FINISH_REASON_NAMES.get(message.finish_reason, "stop")
                    if message.text or message.logprobs:
                        yield writer.piece(message.text, message.logprobs)
                    yield render.line(writer.final(reason, message.usage))
                elif message.text or message.logprobs:
                    yield writer.piece(message.text, message.logprobs)
    except StreamFailed as failure:
        error = convert.ollama_error(failure.rest(), generate=writer.kind == render.GENERATE)
        yield render.line({"error": error.message})
    except Exception as exc:  # noqa: BLE001 - a bug: still an error line, not a cut stream
        log_bug(f"/api/{writer.kind}", exc)
        yield render.line({"error": f"internal error: {type(exc).__name__}"})
    finally:
        live.done()
