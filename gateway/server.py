"""Serving the gateway app with uvicorn (httptools), TLS from the settings, graceful shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.deps import Dependencies
from gateway.settings import GatewaySettings
from services.common.logging import get_logger

log = get_logger("gateway")


def uvicorn_config(app: ASGIApp, settings: GatewaySettings) -> uvicorn.Config:
    """Host, port and TLS from the settings; the caller's event loop; our JSON logging."""
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="none", http="httptools",
        lifespan="on", access_log=False, log_config=None, timeout_graceful_shutdown=30,
        ssl_certfile=settings.tls_cert_file, ssl_keyfile=settings.tls_key_file,
        proxy_headers=True, server_header=False)


class GatewayServer(uvicorn.Server):
    """uvicorn's server, ending normally after the graceful drain that SIGTERM or SIGINT starts.

    uvicorn re-raises the signal once drained, which makes the exit status -15; the gRPC
    services exit 0 after their drain, and so does the gateway.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self._captured_signals:
                    log.info("stopped after a graceful drain")
                self._captured_signals.clear()


def build_server(settings: GatewaySettings) -> uvicorn.Server:
    """The whole gateway, ready to ``await server.serve()`` in the running event loop."""
    return GatewayServer(uvicorn_config(create_app(Dependencies.build(settings)), settings))


async def serve(settings: GatewaySettings) -> None:
    scheme = "https" if settings.tls_enabled else "http"
    log.info("listening", extra={"fields": {"url": f"{scheme}://{settings.host}:{settings.port}"}})
    await build_server(settings).serve()
