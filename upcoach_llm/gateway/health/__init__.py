"""GET /livez, /readyz and /health: liveness, readiness (can a chat be served?) and the guide's
view of every service, Redis and each configured backend."""
