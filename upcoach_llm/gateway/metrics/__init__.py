"""Gateway metrics: Prometheus text at /metrics and the guide's JSON at /api/metrics."""
