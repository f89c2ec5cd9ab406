"""``python -m gateway``: serve the gateway on GATEWAY_PORT with uvicorn (uvloop, httptools).

A configuration error prints one line naming the variable and exits 2, like the gRPC services.
SIGTERM or Ctrl-C stops accepting, lets open requests finish, then closes the upstream channels.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from gateway.app import create_app
from gateway.deps import Dependencies
from gateway.settings import GatewaySettings
from services.common.errors import ConfigError
from services.common.logging import configure_logging, get_logger

log = get_logger("gateway")


async def serve(settings: GatewaySettings) -> None:
    app = create_app(Dependencies.build(settings))
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="none", http="httptools",
        lifespan="on", access_log=False, log_config=None, timeout_graceful_shutdown=30,
        ssl_certfile=settings.tls_cert_file, ssl_keyfile=settings.tls_key_file,
        proxy_headers=True, server_header=False)
    scheme = "https" if settings.tls_enabled else "http"
    log.info("listening", extra={"fields": {"url": f"{scheme}://{settings.host}:{settings.port}"}})
    await uvicorn.Server(config).serve()


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
        configure_logging("gateway", settings.log_level)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        import uvloop

        uvloop.run(serve(settings))
    except ImportError:
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
