"""Runs the embedding service: ``python -m services.embedding`` (EMBEDDING_PORT, default 50052)."""

from services.common.server import run
from services.embedding.service import EmbeddingService

if __name__ == "__main__":
    run(EmbeddingService.from_env, name="embedding", default_port=50052)
