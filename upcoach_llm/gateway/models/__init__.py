"""The model catalog: GET /api/models (the guide's shape, OpenAI's too) and GET /v1/models."""
