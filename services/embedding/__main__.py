"""Runs the embedding service: ``python -m services.embedding`` (its port: topology.py)."""

from services.common.server import run
from services.common.topology import EMBEDDING
from services.embedding.service import EmbeddingService

if __name__ == "__main__":
    run(EmbeddingService.from_env, EMBEDDING)
