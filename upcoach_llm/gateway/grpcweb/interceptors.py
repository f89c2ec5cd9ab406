"""The gate for grpc-web and Connect calls: the same API-key headers and rate-limit budget as REST.

A metadata interceptor first in the chain runs before the request message is read, so a refused
call costs no body parsing. Refusals become UNAUTHENTICATED, RESOURCE_EXHAUSTED or UNAVAILABLE.
"""

from __future__ import annotations

from connectrpc.request import RequestContext

from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.grpcweb.status import from_refusal
from upcoach_llm.gateway.security.gate import Gate


class GateInterceptor:
    """connectrpc MetadataInterceptor: authenticate and spend budget at the start of each RPC."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def on_start(self, ctx: RequestContext) -> None:
        client = ctx.client_address.rpartition(":")[0] if ctx.client_address else None
        try:
            admission = await self._gate.admit(ctx.request_headers, client)
        except APIError as refusal:
            raise from_refusal(refusal) from None
        for name, value in admission.headers().items():
            ctx.response_headers[name] = value

    async def on_end(self, token: None, ctx: RequestContext, error: Exception | None) -> None:
        return None
