"""Runs the router service: ``python -m services.router`` (its port: topology.py)."""

from services.common.server import run
from services.common.topology import ROUTER
from services.router.service import RouterService

if __name__ == "__main__":
    run(RouterService.from_env, ROUTER)
