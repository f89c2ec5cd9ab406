"""The gate for grpc-web and Connect calls: the same API-key headers and rate-limit budget as REST.

A metadata interceptor first in the chain runs before the request message is read, so a refused
call costs no body parsing. Refusals become UNAUTHENTICATED, RESOURCE_EXHAUSTED or UNAVAILABLE.
The admission is kept in ``ADMISSION`` for the rest of the call (its handler runs in the same
task), so the chat RPCs scope cache entries by the caller's key and charge its token budget.
"""

from __future__ import annotations

from contextvars import ContextVar

from connectrpc.request import RequestContext

from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.grpcweb.status import from_refusal
from upcoach_llm.gateway.security.gate import Admission, Gate

ADMISSION: ContextVar[Admission | None] = ContextVar("grpcweb_admission", default=None)


class GateInterceptor:
    """connectrpc MetadataInterceptor: authenticate and spend budget at the start of each RPC."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def on_start(self, ctx: RequestContext) -> None:
        client = ctx.client_address.rpartition(":")[0] if ctx.client_address else None
        try:
            admission = await self._gate.admit(ctx.request_headers, client)
        except APIError as refusal:
            for name, value in refusal.headers.items():  # Retry-After, X-RateLimit-*, as REST
                ctx.response_headers[name] = value
            raise from_refusal(refusal) from None
        ADMISSION.set(admission)
        for name, value in admission.headers().items():
            ctx.response_headers[name] = value

    async def on_end(self, token: None, ctx: RequestContext, error: Exception | None) -> None:
        return None
