"""The embedding service: text embeddings and the coaching content search (upcoach.llm.v1)."""
