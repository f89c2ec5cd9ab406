"""ASGI middleware around every request: body limit, admission, metrics, cancellation when the
client leaves early, path dispatch."""
