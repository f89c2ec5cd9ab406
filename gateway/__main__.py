"""``python -m gateway``: serve the gateway on GATEWAY_PORT with uvicorn (uvloop, httptools).

A configuration error prints one line naming the variable and exits 2, like the gRPC services.
SIGTERM or Ctrl-C stops accepting, lets open requests finish, then closes the upstream channels.
"""

from __future__ import annotations

import sys

import uvloop

from gateway.server import serve
from gateway.settings import GatewaySettings
from services.common.errors import ConfigError
from services.common.logging import configure_logging


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
        configure_logging("gateway", settings.log_level)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
