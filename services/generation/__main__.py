"""Runs the generation service: ``python -m services.generation`` (its port: topology.py)."""

from services.common.server import run
from services.common.topology import GENERATION
from services.generation.service import GenerationService

if __name__ == "__main__":
    run(GenerationService.from_env, GENERATION)
