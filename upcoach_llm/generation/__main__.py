"""Runs the generation service: ``python -m upcoach_llm.generation`` (its port: topology.py)."""

from upcoach_llm.api.topology import GENERATION
from upcoach_llm.common.server import run
from upcoach_llm.generation.service import GenerationService


def main() -> None:
    """The console entry point."""
    run(GenerationService.from_env, GENERATION)


if __name__ == "__main__":
    main()
