"""The gateway's counters, histograms and gauges, in a registry of their own.

Prometheus series carry route, status and model labels; the guide's five JSON numbers are kept as
plain integers beside them so /api/metrics needs no registry walk. Probes and scrapes
(``PROBE_ROUTES``: an orchestrator's /livez and /readyz, Prometheus's /metrics) count only in
their own ``gateway_requests_total`` series: a readiness probe every few seconds is not traffic,
and a 503 from /readyz while a pod starts is not an error.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PROBE_ROUTES = frozenset({"/livez", "/readyz", "/metrics"})
_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """Everything the gateway counts, per process. A ``model`` label is a name of the catalog
    (``models``), ``""`` or ``other``: never a caller's own text, which /metrics would show to
    anyone and whose every new value would be a new series kept forever."""

    def __init__(self, models: Iterable[str] = ()) -> None:
        self._models = frozenset(models)
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "gateway_requests_total", "Requests answered, by route, method, status and model.",
            ["route", "method", "status", "model"], registry=self.registry)
        self._latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to the end of the response (whole stream for SSE), by route.",
            ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self._ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request to the first generated text leaving the gateway, by model.",
            ["model"], buckets=_TTFT_BUCKETS, registry=self.registry)
        self._tokens = Counter(
            "gateway_tokens_generated_total", "Completion tokens generated, by model.",
            ["model"], registry=self.registry)
        self._cache = Counter(
            "gateway_cache_requests_total", "Response cache lookups, by result (hit or miss).",
            ["result"], registry=self.registry)
        self._semantic = Counter(
            "gateway_semantic_cache_requests_total",
            "Semantic cache lookups (after an exact-cache miss), by result (hit or miss).",
            ["result"], registry=self.registry)
        self._rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused with 429 by the rate limit or the token budget.",
            registry=self.registry)
        self._errors = Counter(
            "gateway_errors_total",
            "Responses with status 400 or above, and errors sent inside a started stream "
            "(probes and scrapes left out).",
            registry=self.registry)
        self._active = Gauge(
            "gateway_active_connections", "Requests in progress (open streams included).",
            registry=self.registry)
        self._hit, self._miss = self._cache.labels("hit"), self._cache.labels("miss")
        # Label lookups validate and lock on every call: each request's children are looked up
        # once per distinct label set (as bounded as the series themselves) and kept here.
        self._children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}
        self._model_children: dict[str, tuple[Histogram, Counter]] = {}
        self.requests_total = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.errors_total = 0
        self.active_connections = 0

    def started(self) -> None:
        self.active_connections += 1
        self._active.inc()

    def finished(self, route: str, method: str, status: int, model: str,
                 seconds: float) -> None:
        self.active_connections -= 1
        self._active.dec()
        key = (route, method, status, self._label(model))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(route, method, str(status), key[3]),
                self._latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)
        if route in PROBE_ROUTES:
            return
        self.requests_total += 1
        if status >= 400:
            self.error()

    def error(self) -> None:
        self.errors_total += 1
        self._errors.inc()

    def exact_cache(self, hit: bool) -> None:
        (self._hit if hit else self._miss).inc()

    def answered(self, from_cache: bool) -> None:
        """A chat that read a cache (exact, semantic or both), for the guide's JSON: a hit when
        either answered it, else a miss."""
        if from_cache:
            self.cache_hits += 1
        else:
            self.cache_misses += 1

    def semantic_cache(self, hit: bool) -> None:
        self._semantic.labels("hit" if hit else "miss").inc()

    def rate_limited(self) -> None:
        self._rate_limited.inc()

    def first_token(self, model: str, seconds: float) -> None:
        self._of_model(model)[0].observe(seconds)

    def tokens(self, model: str, count: int) -> None:
        if count > 0:
            self._of_model(model)[1].inc(count)

    def _of_model(self, model: str) -> tuple[Histogram, Counter]:
        label = self._label(model)
        children = self._model_children.get(label)
        if children is None:
            children = self._model_children[label] = (self._ttft.labels(label),
                                                      self._tokens.labels(label))
        return children

    def _label(self, model: str) -> str:
        return model if not model or model in self._models else "other"

    def summary(self) -> dict[str, int]:
        """The guide's /api/metrics JSON."""
        return {"requests_total": self.requests_total, "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses, "errors_total": self.errors_total,
                "active_connections": self.active_connections}
