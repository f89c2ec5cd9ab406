"""Every service's /metrics through real processes: scraped before and after a round of traffic
through the gateway (a streamed chat on embedded llama.cpp, the same greedy chat twice on Ollama
so the second is a cache hit, embeddings, a search, the model list), each scrape parses as
Prometheus text, and the counters moved where the work was done.

The Ollama contract double stands in for Ollama (its server cannot run here), so the router runs
a remote engine itself while generation runs the embedded one: both count engine tokens.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles.ollama_double import OllamaDouble
from upcoach_llm.api.topology import SERVICES
from upcoach_llm.dev.ports import free_port

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
EMBEDDED = "smollm2-135m-instruct"
METHODS = {
    "generation": ["/upcoach.llm.v1.GenerationService/GenerateStream"],
    "router": ["/upcoach.llm.v1.RouterService/ChatStream", "/upcoach.llm.v1.RouterService/Chat"],
    "embedding": ["/upcoach.llm.v1.EmbeddingService/Embed",
                  "/upcoach.llm.v1.EmbeddingService/SearchContent"],
    "model-registry": ["/upcoach.llm.v1.ModelRegistryService/ListModels"],
}


@dataclass
class Scrapes:
    before: dict[str, Samples]
    after: dict[str, Samples]

    def moved(self, service: str, name: str, **labels: str) -> float:
        """How much the sum of the matching samples grew."""
        return _total(self.after[service], name, labels) - _total(self.before[service], name,
                                                                  labels)


def _total(samples: Samples, name: str, labels: dict[str, str]) -> float:
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and labels.items() <= dict(pairs).items())


def scrape(url: str) -> Samples:
    """/metrics parsed as Prometheus text (a parse error fails the test)."""
    reply = httpx.get(url, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples}


KEY = "metrics-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaDouble]:
    with OllamaDouble(installed=["mistral"]) as double:
        yield double


@pytest.fixture(scope="module")
def scrapes(stack_factory, ollama) -> Scrapes:
    ports = {service.name: free_port() for service in SERVICES}
    stack = stack_factory(env={
        "OLLAMA_URL": ollama.url, "RATE_LIMIT_RPM": "1000", "ROUTER_HEALTH_INTERVAL_S": "0.5",
        "REDIS_KEY_PREFIX": f"upcoach:test:{uuid.uuid4().hex[:12]}:", "LLM_API_KEY": KEY,
        **{service.metrics_port_env: str(ports[service.name]) for service in SERVICES}})
    gateway = f"http://{stack.spec('gateway').address}"
    # Every process, the gateway too, on its own metrics port without a key; the gateway's
    # public port keeps /metrics from API keys.
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
    closed = httpx.get(f"{gateway}/metrics", headers=AUTH, timeout=10)
    assert closed.status_code == 401, closed.text
    # The router probes every 0.5 s: ready processes may still be down in its last probe.
    deadline = time.monotonic() + 20
    while _total(scrape(urls["router"]), "upcoach_router_backend_up", {}) < 2:
        assert time.monotonic() < deadline, "the router never saw both backends up"
        time.sleep(0.2)
    before = {name: scrape(url) for name, url in urls.items()}
    with httpx.Client(base_url=gateway, timeout=120, headers=AUTH) as client:
        streamed = client.post("/v1/chat/completions", json={
            "model": EMBEDDED, "messages": [{"role": "user", "content": "Give me a tip"}],
            "max_tokens": 8, "temperature": 0, "stream": True})
        assert streamed.status_code == 200 and "data: [DONE]" in streamed.text, streamed.text
        greedy = {"model": "mistral", "max_tokens": 8, "temperature": 0,
                  "messages": [{"role": "user", "content": f"Tip {uuid.uuid4().hex}"}]}
        first, second = (client.post("/v1/chat/completions", json=greedy) for _ in range(2))
        assert first.status_code == 200 and first.headers.get("X-Cache") != "HIT", first.text
        assert second.headers.get("X-Cache") == "HIT", second.headers
        assert client.post("/v1/embeddings", json={
            "model": "all-minilm-l6-v2", "input": ["walk daily", "drink water"]}).status_code == 200
        assert client.post("/api/search", json={"query": "morning routine"}).status_code == 200
        assert client.get("/v1/models").status_code == 200
    return Scrapes(before, {name: scrape(url) for name, url in urls.items()})


@pytest.mark.parametrize("service", list(METHODS))
def test_each_service_counts_and_times_the_rpcs_it_answered(scrapes: Scrapes,
                                                           service: str) -> None:
    for method in METHODS[service]:
        assert scrapes.moved(service, "upcoach_grpc_requests_total", method=method,
                             code="OK") >= 1, method
        assert scrapes.moved(service, "upcoach_grpc_request_seconds_count", method=method) >= 1
        assert scrapes.moved(service, "upcoach_grpc_request_seconds_bucket", method=method,
                             le="+Inf") >= 1


@pytest.mark.parametrize(("service", "model", "backend_type"), [
    ("generation", EMBEDDED, "embedded"), ("router", "mistral", "ollama")])
def test_engine_tokens_and_time_to_first_token_where_the_engine_runs(
        scrapes: Scrapes, service: str, model: str, backend_type: str) -> None:
    labels = {"model": model, "backend_type": backend_type}
    assert scrapes.moved(service, "upcoach_engine_generated_tokens_total", **labels) > 0
    assert scrapes.moved(service, "upcoach_engine_time_to_first_token_seconds_count",
                         **labels) >= 1
    other = "router" if service == "generation" else "generation"
    assert scrapes.moved(other, "upcoach_engine_generated_tokens_total", **labels) == 0


def test_generation_reports_its_queue_and_contexts(scrapes: Scrapes) -> None:
    names = {name for name, _ in scrapes.after["generation"]}
    assert {"upcoach_generation_queue_depth", "upcoach_generation_busy_contexts"} <= names


def test_the_router_reports_backend_health(scrapes: Scrapes) -> None:
    router = scrapes.after["router"]
    up = {dict(labels)["backend"]: value for (name, labels), value in router.items()
          if name == "upcoach_router_backend_up"}
    assert up == {"ollama": 1.0, "embedded": 1.0}
    assert ("upcoach_router_backend_outstanding_requests", (("backend", "ollama"),)) in router


def test_embedding_counts_texts_and_searches(scrapes: Scrapes) -> None:
    assert scrapes.moved("embedding", "upcoach_embedding_texts_total",
                         model="all-minilm-l6-v2") >= 2
    assert scrapes.moved("embedding", "upcoach_embedding_search_queries_total") == 1
    assert scrapes.after["embedding"][("upcoach_embedding_index_items", ())] > 0


def test_the_gateway_counts_requests_tokens_cache_and_rate_limits(scrapes: Scrapes) -> None:
    assert scrapes.moved("gateway", "gateway_requests_total", status="200") >= 6
    assert scrapes.moved("gateway", "gateway_time_to_first_token_seconds_count",
                         model=EMBEDDED) == 1
    assert scrapes.moved("gateway", "gateway_tokens_generated_total") > 0
    assert scrapes.moved("gateway", "gateway_cache_requests_total", result="hit") == 1
    assert scrapes.moved("gateway", "gateway_cache_requests_total", result="miss") >= 1
    assert ("gateway_rate_limited_total", ()) in scrapes.after["gateway"]
