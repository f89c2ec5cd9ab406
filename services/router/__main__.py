"""Runs the router service: ``python -m services.router`` (port ROUTER_PORT)."""

from services.common.server import run
from services.router.service import RouterService

if __name__ == "__main__":
    run(RouterService.from_env, name="router", default_port=50054)
