"""Runs the generation service: ``python -m services.generation`` (GENERATION_PORT, 50051)."""

from services.common.server import run
from services.generation.service import GenerationService

if __name__ == "__main__":
    run(GenerationService.from_env, name="generation", default_port=50051)
