"""Runs the router service: ``python -m upcoach_llm.router`` (its port: topology.py)."""

from upcoach_llm.api.topology import ROUTER
from upcoach_llm.common.server import run
from upcoach_llm.router.service import RouterService


def main() -> None:
    """The console entry point."""
    run(RouterService.from_env, ROUTER, loop="uvloop")


if __name__ == "__main__":
    main()
