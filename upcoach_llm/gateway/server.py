"""Serving the gateway app with uvicorn (httptools), TLS from the settings, graceful shutdown.

The HTTP protocol is uvicorn's httptools one with header and body timeouts
(``upcoach_llm.gateway.http.timeouts``); connections are capped at GATEWAY_MAX_CONNECTIONS;
X-Forwarded-For is believed only from TRUSTED_PROXIES. On SIGTERM open requests get
GATEWAY_GRACE_S; just before the grace runs out, streams still open are ended with a shutdown
error event. With GATEWAY_METRICS_PORT set, Prometheus text is also served on that port, without
a key, from a thread (prometheus_client's server, as the gRPC services' own).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from upcoach_llm.common.logging import get_logger
from upcoach_llm.common.metrics import serve_metrics
from upcoach_llm.gateway.app import create_app
from upcoach_llm.gateway.deps import Dependencies
from upcoach_llm.gateway.http.shutdown import StreamRegistry
from upcoach_llm.gateway.http.timeouts import timed_protocol
from upcoach_llm.gateway.settings import GatewaySettings

log = get_logger("gateway")


def uvicorn_config(app: ASGIApp, settings: GatewaySettings) -> uvicorn.Config:
    """Host, port and TLS from the settings; the caller's event loop; our JSON logging."""
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="none",
        http=timed_protocol(settings.header_timeout_s, settings.body_idle_timeout_s),
        lifespan="on", access_log=False, log_config=None,
        timeout_graceful_shutdown=settings.grace_seconds,  # type: ignore[arg-type]
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keepalive_timeout_s,  # type: ignore[arg-type]
        ssl_certfile=settings.tls_cert_file, ssl_keyfile=settings.tls_key_file,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies), server_header=False)


class GatewayServer(uvicorn.Server):
    """uvicorn's server, ending live streams cleanly and exiting 0 after the graceful drain.

    uvicorn cancels whatever still runs when the grace ends, which would cut a stream mid-chunk;
    shortly before that, the stream registry cancels the streams' upstream calls so each writes
    its error event and [DONE] while it still can. uvicorn re-raises the signal once drained,
    which makes the exit status -15; the gRPC services exit 0 after their drain, and so does the
    gateway.
    """

    def __init__(self, config: uvicorn.Config, streams: StreamRegistry) -> None:
        super().__init__(config)
        self.streams = streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        grace = float(self.config.timeout_graceful_shutdown or 0)
        timer = asyncio.get_running_loop().call_later(grace - min(1.0, grace / 10),
                                                      self.streams.expire)
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self._captured_signals:
                    log.info("stopped after a graceful drain")
                self._captured_signals.clear()


def server_for(deps: Dependencies) -> GatewayServer:
    """The gateway app over deps, ready to ``await server.serve()`` in the running event loop."""
    return GatewayServer(uvicorn_config(create_app(deps), deps.settings), deps.streams)


async def serve(settings: GatewaySettings) -> None:
    """Builds the whole gateway in the running event loop and serves until a signal ends it."""
    deps = Dependencies.build(settings)
    server = server_for(deps)
    serve_metrics(settings.host, settings.metrics_port, deps.metrics.registry)
    scheme = "https" if settings.tls_enabled else "http"
    log.info("listening", extra={"fields": {
        "url": f"{scheme}://{settings.host}:{settings.port}",
        "metrics_url": (f"http://{settings.host}:{settings.metrics_port}/metrics"
                        if settings.metrics_port else None)}})
    await server.serve()
