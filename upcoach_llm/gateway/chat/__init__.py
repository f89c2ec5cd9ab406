"""OpenAI chat completions at /v1/chat/completions and /api/chat/completions, SSE included."""
