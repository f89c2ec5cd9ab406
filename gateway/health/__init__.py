"""GET /health: the gateway's view of every service, Redis and each configured backend."""
