"""``python -m upcoach_llm.gateway``: serve the gateway on GATEWAY_PORT with uvicorn (uvloop,
httptools).

A configuration error prints one line naming the variable and exits 2, like the gRPC services.
SIGTERM or Ctrl-C stops accepting, lets open requests finish, then closes the upstream channels
(and, with tracing on, exports the spans still queued).
"""

from __future__ import annotations

import sys

import uvloop

from upcoach_llm.api.topology import GATEWAY
from upcoach_llm.common import tracing
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.logging import configure_logging
from upcoach_llm.gateway.server import serve
from upcoach_llm.gateway.settings import GatewaySettings


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
        configure_logging("gateway", settings.log_level)
        tracing.setup(GATEWAY.name)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        uvloop.run(serve(settings))
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
