"""Assembles the gateway's ASGI application from its parts.

    CORS (when CORS_ORIGINS is set)
      -> error boundary (an escaped exception never reaches uvicorn, which would close the socket)
       -> tracing (only when tracing is on: the request's HTTP server span)
        -> access (request id, auth, rate limit, metrics)
          -> body limit (413, before the body is read)
            -> dispatch: /upcoach.llm.v1.<Service>/<Method> to the grpc-web/Connect apps,
                         everything else to the FastAPI REST app (which serves /openapi.json)
              -> chat fast path: well-formed chat completions without FastAPI's machinery
                 (chat/fastpath.py); anything else on to the REST app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from upcoach_llm.common import tracing
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway import grpcweb
from upcoach_llm.gateway.chat.fastpath import ChatFastPath
from upcoach_llm.gateway.chat.router import build_router as chat_routes
from upcoach_llm.gateway.chat.semantic import log_vector_search
from upcoach_llm.gateway.chat.serving import ChatServing
from upcoach_llm.gateway.coaching.router import build_router as coaching_routes
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.embeddings.router import build_router as embeddings_routes
from upcoach_llm.gateway.errors import install_handlers
from upcoach_llm.gateway.grpcweb.services import build_apps as grpcweb_apps
from upcoach_llm.gateway.health.router import build_router as health_routes
from upcoach_llm.gateway.http.access import AccessMiddleware
from upcoach_llm.gateway.http.body_limit import BodyLimitMiddleware
from upcoach_llm.gateway.http.boundary import ErrorBoundary
from upcoach_llm.gateway.http.disconnect import CancelOnDisconnect
from upcoach_llm.gateway.http.tracing import TracingMiddleware
from upcoach_llm.gateway.metrics.router import build_router as metrics_routes
from upcoach_llm.gateway.models.router import build_router as models_routes
from upcoach_llm.gateway.ollama.router import build_router as ollama_routes
from upcoach_llm.gateway.ondevice.router import build_router as ondevice_routes
from upcoach_llm.gateway.openapi import install as install_openapi

log = get_logger(__name__)

# Not behind the API-key gate: probes, the docs, and the metrics (they ask for the operator's key).
PUBLIC_PATHS = frozenset({"/health", "/livez", "/readyz", "/metrics", "/api/metrics",
                          "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"})
# Response headers a browser's script may read (REST and grpc-web alike).
EXPOSED_HEADERS = ["X-Cache", "X-Cache-Similarity", "X-Request-ID", "Server-Timing",
                   "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                   "X-RateLimit-Limit-Tokens", "X-RateLimit-Remaining-Tokens",
                   "X-RateLimit-Reset-Tokens", "X-Safety-Category",
                   "Retry-After", "grpc-status", "grpc-message", "grpc-status-details-bin"]

DESCRIPTION = """\
The UpCoach LLM gateway. REST: the guide's endpoints (/health, /api/models, /api/coaching/chat,
/api/metrics), the app's on-device endpoints (/api/models/edge, /api/inference/decide),
OpenAI-compatible chat completions, embeddings and models under /v1 and /api, and
Prometheus metrics at /metrics (both metrics endpoints: the operator's key, LLM_ADMIN_KEY,
while keys are on),
liveness at /livez and readiness at /readyz (503 while no chat can be served; /health too).
Errors always have the shape
`{"error": {"message", "type", "param", "code"}}`, except on Ollama's API (/api/chat,
/api/generate, /api/tags, /api/show, /api/ps, /api/embed, and /api/embeddings with Ollama's
legacy body), which answers as Ollama does, errors as `{"error": "<message>"}`.

The same port serves grpc-web and Connect for the mobile app at
`/upcoach.llm.v1.RouterService/{ChatStream,Chat,Route,DecideInference}`,
`/upcoach.llm.v1.EmbeddingService/{Embed,SearchContent}` and
`/upcoach.llm.v1.ModelRegistryService/{ListModels,GetModel,ListEdgeModels}`.

Authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>` when LLM_API_KEY is set.
"""


# FastAPI's own OpenTelemetry instrumentation traces whenever a global tracer provider is set:
# a second HTTP span and spans per dependency, endpoint and serialization. The tracing middleware
# (upcoach_llm.gateway.http.tracing) makes the one HTTP span, grpc-web included; off, FastAPI skips
# its per-request provider checks too.
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                         "operation_spans": False, "auto_configure": False}


def gated(path: str) -> bool:
    """REST paths that need a key and spend rate-limit budget (grpc-web is gated per RPC)."""
    return path not in PUBLIC_PATHS and not path.startswith(grpcweb.PATH_PREFIX)


def create_app(deps: Dependencies) -> ASGIApp:
    """The whole gateway as one ASGI app; call inside the serving event loop."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settings = deps.settings
        if not settings.auth_enabled:
            log.warning("AUTH IS OFF: LLM_API_KEY is not set, every caller is accepted. "
                        "Set LLM_API_KEY (one key or a comma-separated list) to require a key.")
        log.info("gateway ready", extra={"fields": {
            "auth": "on" if settings.auth_enabled else "OFF", "keys": len(settings.api_keys),
            "rate_limit_rpm": settings.rate_limit_rpm, "cache_mode": settings.cache_mode.value,
            "cache_ttl": settings.cache_ttl, "upstreams": vars(settings.upstreams)}})
        if deps.semantic is not None:
            await log_vector_search(deps.redis)
        try:
            yield
        finally:
            await deps.close()

    rest = FastAPI(title="UpCoach LLM gateway", version="1.0.0", description=DESCRIPTION,
                   lifespan=lifespan, strict_content_type=False, telemetry=NO_FASTAPI_TELEMETRY)
    install_handlers(rest)
    # Routes are matched in order: the busiest first.
    chat = ChatServing(deps)
    chat_router = chat_routes(chat)
    rest.include_router(chat_router)
    rest.include_router(coaching_routes(deps))
    rest.include_router(embeddings_routes(deps))
    rest.include_router(ollama_routes(deps))
    rest.include_router(health_routes(deps))
    rest.include_router(ondevice_routes(deps))  # before /api/models/{model}: owns /edge
    rest.include_router(models_routes(deps))
    rest.include_router(metrics_routes(deps.metrics, keys_on=deps.settings.auth_enabled,
                                       admin_key=deps.settings.admin_key))
    install_openapi(rest, gated)

    chat_api_routes = [route for route in chat_router.routes if isinstance(route, APIRoute)]
    app: ASGIApp = grpcweb.Dispatcher(ChatFastPath(rest, chat, chat_api_routes),
                                      grpcweb_apps(deps))
    app = CancelOnDisconnect(app, exempt_prefix=grpcweb.PATH_PREFIX)  # connectrpc watches there
    app = BodyLimitMiddleware(app, deps.settings.max_body_bytes,
                              exempt_prefix=grpcweb.PATH_PREFIX)  # limited per message there
    app = AccessMiddleware(app, deps.gate, deps.metrics, gated)
    if tracing.ENABLED:
        app = TracingMiddleware(app)
    app = ErrorBoundary(app)
    if deps.settings.cors_origins:
        app = CORSMiddleware(app, allow_origins=list(deps.settings.cors_origins),
                             allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"],
                             expose_headers=EXPOSED_HEADERS, max_age=600)
    return app
