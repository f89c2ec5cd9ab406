"""Runs the embedding service: ``python -m upcoach_llm.embedding`` (its port: topology.py)."""

from upcoach_llm.api.topology import EMBEDDING
from upcoach_llm.common.server import run
from upcoach_llm.embedding.service import EmbeddingService


def main() -> None:
    """The console entry point."""
    run(EmbeddingService.from_env, EMBEDDING)


if __name__ == "__main__":
    main()
