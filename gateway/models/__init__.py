"""The model catalog: GET /api/models (the guide's shape) and GET /v1/models (OpenAI's)."""
