"""uvicorn's httptools protocol with /livez outside its concurrency cap (GATEWAY_MAX_CONNECTIONS).

At the cap uvicorn answers every new request 503 before the app sees it. That is the right
answer for traffic, and for /readyz (a full pod leaves the Service's endpoints), but not for the
liveness probe: three 503s in a row and the kubelet restarts a pod that is only busy, cutting every
stream it serves and pushing its load onto the others. /livez answers while the event loop runs,
cap or not; it calls nothing, so answering it costs next to nothing.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

UNCAPPED_PATHS = frozenset({b"/livez"})


class LivenessUncappedProtocol(HttpToolsProtocol):
    """Serves UNCAPPED_PATHS whatever ``limit_concurrency`` says; every other path as uvicorn."""

    def on_headers_complete(self) -> None:
        limit = self.limit_concurrency
        if limit is None or self.url.split(b"?", 1)[0] not in UNCAPPED_PATHS:
            super().on_headers_complete()
            return
        self.limit_concurrency = None  # uvicorn checks it right here, then only per request
        try:
            super().on_headers_complete()
        finally:
            self.limit_concurrency = limit
