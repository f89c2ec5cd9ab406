"""GET /livez, /readyz and /health: public (no key, no rate limit), never cached by clients.

/livez answers while the process runs, without calling anything. /readyz is 503 in the one
error shape while no chat can be served (the verdict is reused for a second, see readiness.py).
/health is the guide's report: 200 when chat is served (ok, or degraded when some part is
down), 503 when it is not; its ``details`` only go to a caller presenting LLM_ADMIN_KEY. Its
checks are shared as /readyz's are: one round a second, whoever asks.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.health.protocol import HealthResponse, LiveResponse, ReadyResponse
from upcoach_llm.gateway.health.readiness import Shared, probe
from upcoach_llm.gateway.health.serving import check_health
from upcoach_llm.gateway.security.admin import AdminKey

NO_STORE = {"Cache-Control": "no-store"}
ERROR_DOC = {503: {"description": "no chat can be served; the error shape with the reason"}}


def build_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["health"])
    readiness = Shared(lambda: probe(deps))
    checked = Shared(lambda: check_health(deps, with_details=True))
    admin = AdminKey(deps.settings.admin_key)

    @router.get("/livez", response_model=LiveResponse,
                summary="Liveness: the gateway process runs (no upstream call)")
    async def livez(response: Response) -> LiveResponse:
        response.headers.update(NO_STORE)
        return LiveResponse()

    @router.get("/readyz", response_model=ReadyResponse, responses=ERROR_DOC,
                summary="Readiness: the router serves and routes the default chat model")
    async def readyz(response: Response) -> ReadyResponse:
        chat = await readiness.get()
        if not chat.ready:
            raise APIError(503, chat.reason, code=chat.code, headers=NO_STORE)
        response.headers.update(NO_STORE)
        return ReadyResponse()

    @router.get("/health", response_model=HealthResponse, response_model_exclude_none=True,
                responses={503: {"model": HealthResponse, "description": "status down"}},
                summary="Health of the gateway, each service, Redis and each backend")
    async def health(request: Request, response: Response) -> HealthResponse:
        report, chat = await checked.get()
        if not admin.presented_by(request.headers):
            report = report.model_copy(update={"details": None})
        response.headers.update(NO_STORE)
        if not chat.ready:
            response.status_code = 503
        return report

    return router
