"""RemoteHttp carries the caller's trace context to the remote engine when tracing is on."""

from __future__ import annotations

import httpx

from tests.support.tracing import recorded_spans
from upcoach_llm.common import tracing
from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.engines.remote_http import RemoteHttp
from upcoach_llm.engines.remote_settings import RemoteSettings

BACKEND = BackendConfig(name="vllm", type="openai", url="http://vllm:8000/v1",
                        models=["mistral"])


def _remote(seen: list[httpx.Request]) -> RemoteHttp:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text='{"ok": true}\n')

    remote = RemoteHttp(BACKEND, "http://vllm:8000/v1", RemoteSettings(),
                        headers={"Authorization": "Bearer key"})
    remote._client = httpx.AsyncClient(base_url=remote.url, headers={"Authorization": "Bearer key"},
                                       transport=httpx.MockTransport(answer))
    return remote


async def _both(remote: RemoteHttp) -> None:
    await remote.request_json("GET", "/models")
    async with remote.stream("/chat/completions", {"stream": True}) as batches:
        async for _ in batches:
            pass


async def test_requests_carry_the_traceparent_while_tracing() -> None:
    seen: list[httpx.Request] = []
    with recorded_spans():
        remote = _remote(seen)
        with tracing.tracer().start_as_current_span("chat mistral") as span:
            await _both(remote)
        await remote.request_json("GET", "/models")  # outside any span: a probe
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert [r.headers["traceparent"].split("-")[1] for r in seen[:2]] == [trace_id, trace_id]
    assert all(r.headers["authorization"] == "Bearer key" for r in seen)
    assert "traceparent" not in seen[2].headers


async def test_no_traceparent_when_tracing_is_off() -> None:
    seen: list[httpx.Request] = []
    await _both(_remote(seen))
    assert len(seen) == 2 and not any("traceparent" in r.headers for r in seen)
