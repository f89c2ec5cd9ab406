"""ASGI middleware around every request: body limit, admission, metrics, path dispatch."""
