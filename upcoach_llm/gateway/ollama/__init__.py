"""Ollama's REST API on the gateway: /api/chat, /api/generate, /api/tags, /api/show, /api/ps,
/api/embed and the legacy /api/embeddings (see router.py)."""
