"""Runs the model-registry service: ``python -m upcoach_llm.registry`` (its port: topology.py)."""

from upcoach_llm.api.topology import MODEL_REGISTRY
from upcoach_llm.common.server import run
from upcoach_llm.registry.service import RegistryService


def main() -> None:
    """The console entry point."""
    run(RegistryService.from_env, MODEL_REGISTRY)


if __name__ == "__main__":
    main()
