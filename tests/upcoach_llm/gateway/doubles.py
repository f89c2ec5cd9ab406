"""A scripted stand-in for the router, embedding and model-registry services, on a real socket.

The gateway's own layers are tested against this double over real gRPC; the integration tests
run the real services. The router's reply is driven by the last user message:

- ``FAIL_AFTER n``: n text chunks, then UNAVAILABLE (an error after the stream started);
- ``UNAVAILABLE``: UNAVAILABLE before any chunk;
- ``BUSY``: RESOURCE_EXHAUSTED with a 3 s RetryInfo (every backend busy);
- ``SLOW``: a chunk every 20 ms for 10 s, recording whether the caller cancelled;
- ``FINISH_THEN_FAIL``: the echo and its finish, then UNAVAILABLE (the call's status fails
  after a whole reply);
- ``HOLD``: nothing for 10 s before the reply (or the stream's first message), recording
  whether the caller cancelled;
- ``BAD_FIELD``: INVALID_ARGUMENT whose BadRequest names ``sampling.top_p`` while the message
  text does not start with it (the field travels as data, never parsed from the text);
- anything else: ``echo: <text>`` word by word (with ``sampling.logprobs``, each word is one
  token of log probability ``-0.5 * position``, with ``top_logprobs`` alternatives ``alt<k>``).

``Route`` answers the decision, or UNAVAILABLE while ``switches.route_unavailable`` is set (as the
real router does when no backend serves the model's fallback chain). Errors about one request
field carry a google.rpc.BadRequest naming it, as the real services' errors do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from upcoach_llm.api import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    model_registry_pb2,
    model_registry_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from upcoach_llm.api.status_details import status_metadata

CHAT_MODELS = ("mistral", "llama3.2:3b", "smollm2-135m-instruct")
CONTEXTS = ("general", "habits", "goals", "motivation", "wellness", "mood")
SERVED = "smollm2-135m-instruct"


@dataclass
class Calls:
    """What the double saw, for assertions."""

    chat: list[router_pb2.ChatRequest | router_pb2.ChatStreamRequest] = field(default_factory=list)
    embed: list[embedding_pb2.EmbedRequest] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    headers: list[dict[str, str]] = field(default_factory=list)
    route: list[router_pb2.RouteRequest] = field(default_factory=list)
    decide: list[router_pb2.DecideInferenceRequest] = field(default_factory=list)
    admin: list[str] = field(default_factory=list)  # IndexContent, PullModel, ListBackends
    time_left: list[float | None] = field(default_factory=list)  # each chat's deadline, seen


@dataclass
class Switches:
    """Failures a test turns on and off."""

    route_unavailable: bool = False


async def _bad_field(context: grpc.aio.ServicerContext, code: grpc.StatusCode, field: str,
                     message: str) -> None:
    """Aborts as the real services do for a bad field: the message, and a BadRequest naming it."""
    await context.abort(code, message, trailing_metadata=status_metadata(
        code, message, field=field, description=message.removeprefix(f"{field}: ")))


async def _route(request, context: grpc.aio.ServicerContext
                 ) -> router_pb2.RouteDecision:
    """The route, or an abort with the status the real router gives for a bad request."""
    if request.model and request.model not in CHAT_MODELS:
        await _bad_field(context, grpc.StatusCode.NOT_FOUND, "model",
                         f"model {request.model!r} is not in the catalog")
    if request.coaching_context and request.coaching_context not in CONTEXTS:
        await _bad_field(context, grpc.StatusCode.INVALID_ARGUMENT, "coaching_context",
                         f"coaching_context: {request.coaching_context!r} is not one of "
                         f"{', '.join(CONTEXTS)}")
    if request.sampling.HasField("max_tokens") and request.sampling.max_tokens > 4096:
        await _bad_field(context, grpc.StatusCode.INVALID_ARGUMENT, "sampling.max_tokens",
                         f"sampling.max_tokens: {request.sampling.max_tokens} is above the "
                         "limit of 4096")
    if request.messages and request.messages[-1].content == "BAD_FIELD":
        await _bad_field(context, grpc.StatusCode.INVALID_ARGUMENT, "sampling.top_p",
                         "this model cannot sample with that nucleus")
    return router_pb2.RouteDecision(requested_model=request.model or "mistral", model=SERVED,
                                    backend="embedded", reason="double")


async def _busy(context: grpc.aio.ServicerContext) -> None:
    message = "every backend for smollm2 is busy, retry shortly"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    await context.abort(code, message, trailing_metadata=status_metadata(code, message, 3.0))


def _words(request) -> list[str]:
    text = request.messages[-1].content
    words = f"echo: {text}".split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _logprobs(request, words: list[str], start: int = 0) -> list[common_pb2.TokenLogprob]:
    if not request.sampling.logprobs:
        return []
    return [common_pb2.TokenLogprob(token=word, logprob=-0.5 * (start + i), top_logprobs=[
        common_pb2.TopLogprob(token=f"alt{k}", logprob=-1.0 - k)
        for k in range(request.sampling.top_logprobs)]) for i, word in enumerate(words)]


def _usage(request, completion: int) -> common_pb2.Usage:
    prompt = sum(len(m.content.split()) for m in request.messages)
    return common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion,
                            total_tokens=prompt + completion, time_to_first_token_ms=1.0,
                            generation_ms=2.0)


async def _hold(calls: Calls) -> None:
    """A "HOLD" message: nothing for 10 s, as a request queued for a slot or in its prompt; being
    cancelled meanwhile sets ``calls.cancelled``."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        calls.cancelled.set()
        raise


class RouterDouble(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, calls: Calls, switches: Switches | None = None) -> None:
        self.calls = calls
        self.switches = switches or Switches()

    async def Route(self, request, context):
        self.calls.route.append(request)
        if self.switches.route_unavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "no healthy backend serves mistral: backend embedded "
                                "(embedded at 10.0.0.7:9201) is unreachable")
        return router_pb2.RouteResponse(route=router_pb2.RouteDecision(
            requested_model=request.model or "mistral", model=SERVED, backend="embedded",
            reason="double"))

    async def ChatStream(self, request, context):
        self.calls.chat.append(request)
        self.calls.headers.append(dict(context.invocation_metadata()))
        route = await _route(request, context)
        text = request.messages[-1].content
        if text == "UNAVAILABLE":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no backend can serve smollm2")
        if text == "BUSY":
            await _busy(context)
        if text == "HOLD":
            await _hold(self.calls)
        yield router_pb2.ChatStreamResponse(route=route)
        if text.startswith("FAIL_AFTER"):
            for i in range(int(text.split()[1])):
                yield router_pb2.ChatStreamResponse(text=f"part{i} ")
            await context.abort(grpc.StatusCode.UNAVAILABLE, "backend went away")
        if text == "SLOW":
            finished = False
            try:
                for _ in range(500):
                    yield router_pb2.ChatStreamResponse(text="tick ")
                    await asyncio.sleep(0.02)
                finished = True
            finally:
                # Cancelled while sleeping (CancelledError) or while suspended at a yield
                # (GeneratorExit): either way the caller went away.
                if not finished:
                    self.calls.cancelled.set()
            return
        words = _words(request)
        for index, word in enumerate(words):
            yield router_pb2.ChatStreamResponse(text=word,
                                                logprobs=_logprobs(request, [word], index))
        yield router_pb2.ChatStreamResponse(finish_reason=common_pb2.FINISH_REASON_STOP,
                                            usage=_usage(request, len(words)))
        if text == "FINISH_THEN_FAIL":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "went away after the finish")

    async def Chat(self, request, context):
        self.calls.chat.append(request)
        self.calls.time_left.append(context.time_remaining())
        self.calls.headers.append(dict(context.invocation_metadata()))
        route = await _route(request, context)
        text = request.messages[-1].content
        if text == "UNAVAILABLE" or text.startswith("FAIL_AFTER"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no backend can serve smollm2")
        if text == "BUSY":
            await _busy(context)
        if text == "HOLD":
            await _hold(self.calls)
        words = _words(request)
        return router_pb2.ChatResponse(route=route, text="".join(words),
                                       finish_reason=common_pb2.FINISH_REASON_STOP,
                                       usage=_usage(request, len(words)),
                                       logprobs=_logprobs(request, words))

    async def DecideInference(self, request, context):
        self.calls.decide.append(request)
        target = (router_pb2.INFERENCE_TARGET_ON_DEVICE if len(request.prompt) < 20
                  else router_pb2.INFERENCE_TARGET_SERVER)
        return router_pb2.DecideInferenceResponse(target=target, reason="double")

    async def ListBackends(self, request, context):
        self.calls.admin.append("ListBackends")
        return router_pb2.ListBackendsResponse(backends=[router_pb2.Backend(
            name="embedded", type=common_pb2.BACKEND_TYPE_EMBEDDED, models=[SERVED],
            healthy=True)])


class EmbeddingDouble(embedding_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def Embed(self, request, context):
        self.calls.embed.append(request)
        if not request.texts:
            await _bad_field(context, grpc.StatusCode.INVALID_ARGUMENT, "texts",
                             "texts: at least one text")
        if request.model and request.model not in ("nomic-embed-text", "all-minilm-l6-v2"):
            await _bad_field(context, grpc.StatusCode.NOT_FOUND, "model",
                             f"model {request.model!r} is not in the catalog")
        vectors = [embedding_pb2.Embedding(values=[float(len(t)), 0.5, -0.25, 1.0])
                   for t in request.texts]
        return embedding_pb2.EmbedResponse(model="all-minilm-l6-v2", embeddings=vectors,
                                           prompt_tokens=sum(len(t.split()) for t in request.texts),
                                           dimensions=4)

    async def IndexContent(self, request, context):
        self.calls.admin.append("IndexContent")
        return embedding_pb2.IndexContentResponse(indexed=len(request.items))

    async def SearchContent(self, request, context):
        item = embedding_pb2.ContentItem(id="tip-1", category="habits", title="Start small",
                                         text=f"About {request.query}", tags=["habits"])
        return embedding_pb2.SearchContentResponse(
            hits=[embedding_pb2.SearchHit(item=item, score=0.75)][: request.top_k or 5],
            model="all-minilm-l6-v2")


class RegistryDouble(model_registry_pb2_grpc.ModelRegistryServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def PullModel(self, request, context):
        self.calls.admin.append("PullModel")
        yield model_registry_pb2.PullModelResponse(status="success")

    async def ListModels(self, request, context):
        return model_registry_pb2.ListModelsResponse(models=[
            model_registry_pb2.Model(name="mistral", size_bytes=4100000000,
                                     kind=model_registry_pb2.MODEL_KIND_CHAT,
                                     availability=[model_registry_pb2.BackendAvailability(
                                         backend="ollama", available=False,
                                         detail="backend down: backend ollama (ollama at "
                                                "http://10.0.0.9:11434) is unreachable")]),
            model_registry_pb2.Model(name="nomic-embed-text", size_bytes=274000000,
                                     kind=model_registry_pb2.MODEL_KIND_EMBEDDING, served=True),
        ])

    async def GetModel(self, request, context):
        kinds = {"mistral": model_registry_pb2.MODEL_KIND_CHAT,
                 "nomic-embed-text": model_registry_pb2.MODEL_KIND_EMBEDDING}
        if request.name not in kinds:
            await _bad_field(context, grpc.StatusCode.NOT_FOUND, "name",
                             f"name: {request.name!r} is not in the catalog")
        return model_registry_pb2.GetModelResponse(model=model_registry_pb2.Model(
            name=request.name, kind=kinds[request.name]))

    async def ListEdgeModels(self, request, context):
        if request.platform == model_registry_pb2.PLATFORM_UNSPECIFIED:
            await _bad_field(context, grpc.StatusCode.INVALID_ARGUMENT, "platform",
                             "platform: required")
        return model_registry_pb2.ListEdgeModelsResponse(
            models=[model_registry_pb2.EdgeModel(id="smollm-360m", name="SmolLM 360M")],
            default_model_id="smollm-360m")


@dataclass
class UpstreamDouble:
    """The running double: one server hosting the three services and grpc.health.v1."""

    server: grpc.aio.Server
    address: str
    calls: Calls
    health: health.aio.HealthServicer
    switches: Switches = field(default_factory=Switches)

    async def set_serving(self, serving: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set("", status)


async def start_double() -> UpstreamDouble:
    calls = Calls()
    switches = Switches()
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServiceServicer_to_server(RouterDouble(calls, switches), server)
    embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(EmbeddingDouble(calls), server)
    model_registry_pb2_grpc.add_ModelRegistryServiceServicer_to_server(RegistryDouble(calls),
                                                                       server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return UpstreamDouble(server, f"127.0.0.1:{port}", calls, health_servicer, switches)
