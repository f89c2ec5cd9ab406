"""Embeddings (OpenAI shape) at /v1/embeddings and /api/embeddings; search at /api/search."""
