"""Cross-cutting HTTP behaviour: request ids, metrics, CORS, TLS, OpenAPI."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from tests.upcoach_llm.gateway.conftest import RunningGateway
from upcoach_llm.gateway.metrics.registry import GatewayMetrics

HELLO = {"messages": [{"role": "user", "content": "hi"}]}


async def test_request_id_is_kept_or_made_and_passed_on(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        given = await client.post("/v1/chat/completions", json=HELLO,
                                  headers={"X-Request-ID": "trace-42"})
        made = await client.post("/v1/chat/completions", json=HELLO)
        bad = await client.get("/health", headers={"X-Request-ID": "no spaces allowed"})
    assert given.headers["x-request-id"] == "trace-42"
    assert gw.double.calls.chat[0].request_id == "trace-42"
    assert len(made.headers["x-request-id"]) == 16
    assert gw.double.calls.chat[1].request_id == made.headers["x-request-id"]
    assert bad.headers["x-request-id"] != "no spaces allowed"


async def test_prometheus_and_guide_metrics(gateway) -> None:
    gw: RunningGateway = await gateway({"RATE_LIMIT_RPM": "50"})
    greedy = {**HELLO, "temperature": 0}
    async with gw.client() as client:
        await client.post("/v1/chat/completions", json=greedy)
        await client.post("/v1/chat/completions", json=greedy)
        await client.post("/v1/chat/completions", json={**HELLO, "stream": True})
        await client.post("/v1/chat/completions", json={**HELLO, "model": "gpt-9"})
        for probe in ("/livez", "/readyz", "/metrics"):  # not traffic: not in the summary
            await client.get(probe)
        summary = (await client.get("/api/metrics")).json()
        text = (await client.get("/metrics")).text
    assert summary == {"requests_total": 4, "cache_hits": 1, "cache_misses": 1,
                       "errors_total": 1, "active_connections": 1}
    model = 'model="smollm2-135m-instruct"'
    assert ('gateway_requests_total{method="POST",' + model
            + ',route="/v1/chat/completions",status="200"} 3.0') in text
    assert 'route="/v1/chat/completions",status="404"} 1.0' in text
    assert 'gateway_request_duration_seconds_bucket{le="0.5",route="/v1/chat/completions"}' in text
    assert f"gateway_time_to_first_token_seconds_count{{{model}}} 1.0" in text
    assert f"gateway_tokens_generated_total{{{model}}} 4.0" in text
    assert 'gateway_cache_requests_total{result="hit"} 1.0' in text
    assert 'gateway_cache_requests_total{result="miss"} 1.0' in text
    assert "gateway_rate_limited_total 0.0" in text
    assert "gateway_active_connections 1.0" in text
    assert 'method="GET",model="",route="/livez",status="200"} 1.0' in text


async def test_cors_when_configured(gateway) -> None:
    gw: RunningGateway = await gateway({"CORS_ORIGINS": "https://app.upcoach.com",
                                        "LLM_API_KEY": "k"})
    async with gw.client() as client:
        preflight = await client.options("/v1/chat/completions", headers={
            "Origin": "https://app.upcoach.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        allowed = await client.get("/health", headers={"Origin": "https://app.upcoach.com"})
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.upcoach.com"
    assert allowed.headers["access-control-allow-origin"] == "https://app.upcoach.com"
    assert "x-cache" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_by_default(gateway) -> None:
    gw: RunningGateway = await gateway()
    async with gw.client() as client:
        reply = await client.get("/health", headers={"Origin": "https://app.upcoach.com"})
    assert "access-control-allow-origin" not in reply.headers


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls(gateway, self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    gw: RunningGateway = await gateway({"TLS_ENABLED": "true", "TLS_CERT_FILE": str(cert),
                                        "TLS_KEY_FILE": str(key)})
    https = gw.url.replace("http://", "https://")
    context = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(base_url=https, verify=context) as client:
        reply = await client.get("/health")
    assert reply.status_code == 200
    async with httpx.AsyncClient(base_url=gw.url) as client:
        try:
            plain = await client.get("/health")
        except httpx.HTTPError:
            plain = None
    assert plain is None or plain.status_code != 200


async def test_openapi_describes_every_endpoint(gateway) -> None:
    gw: RunningGateway = await gateway({"LLM_API_KEY": "k"})
    async with gw.client() as client:
        reply = await client.get("/openapi.json")
    assert reply.status_code == 200
    paths = reply.json()["paths"]
    for path in ("/health", "/api/models", "/v1/models", "/api/chat/completions",
                 "/v1/chat/completions", "/api/coaching/chat", "/api/embeddings",
                 "/v1/embeddings", "/api/search", "/api/metrics", "/metrics"):
        assert path in paths, path
    schema = reply.json()["components"]["schemas"]["CoachingChatRequest"]
    assert "context_type" in schema["required"]


def test_a_model_label_is_a_catalog_name_or_other() -> None:
    metrics = GatewayMetrics(["mistral"])
    metrics.started()
    metrics.finished("/v1/chat/completions", "POST", 200, "LEAK-secret-note", 0.01)
    metrics.started()
    metrics.finished("/v1/chat/completions", "POST", 200, "mistral", 0.01)
    metrics.tokens("x" * 3000, 5)
    metrics.first_token("x" * 3000, 0.1)
    text = generate_latest(metrics.registry).decode()
    assert "LEAK" not in text and "xxx" not in text
    assert 'model="other",route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'model="mistral",route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'gateway_tokens_generated_total{model="other"} 5.0' in text
