"""Two router processes behind one gateway, as two pods behind a headless Service.

The gateway dials both through one target (``ipv4:a,b``, what ``dns:///router:50054`` resolves
to on Kubernetes); round_robin sends chats to both, and stopping one (SIGTERM: health
NOT_SERVING, GOAWAY, in-flight calls drain) loses no request: the ones it was streaming finish
there, the ones not started go to the other router.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from upcoach_llm.api.topology import ROUTER
from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import ProcessSpec, Stack, default_specs

pytestmark = pytest.mark.integration
CHAT_STREAM = "/upcoach.llm.v1.RouterService/ChatStream"
CHAT = "/upcoach.llm.v1.RouterService/Chat"
RUN = uuid.uuid4().hex[:8]  # the shared Redis may hold replies of an earlier run


@pytest.fixture(scope="module")
def stack():
    specs = default_specs({s.name: free_port() for s in default_specs()})
    specs.insert(next(i for i, s in enumerate(specs) if s.service is ROUTER) + 1,
                 ProcessSpec(ROUTER, free_port(), replica="b"))
    for spec in specs:
        if spec.service is ROUTER:
            spec.env[ROUTER.metrics_port_env] = str(free_port())
    log_dir = tempfile.mkdtemp(prefix="upcoach-replicas-")
    stack = Stack(specs, env={"LOG_LEVEL": "info", "GRPC_GRACE_S": "40",
                              "RATE_LIMIT_RPM": "0", "ROUTER_HEALTH_INTERVAL_S": "0.5"},
                  log_dir=log_dir)
    stack.start()
    try:
        stack.wait_ready(180)
        yield stack
    finally:
        stack.stop()


def chats_served(stack: Stack, name: str) -> float:
    """ChatStream plus Chat calls the named router answered, from its /metrics."""
    port = stack.spec(name).env[ROUTER.metrics_port_env]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "upcoach_grpc_requests_total"
               and sample.labels.get("method") in (CHAT_STREAM, CHAT))


def ask(gateway: str, n: int, *, stream: bool) -> str | None:
    """One greedy chat (a prompt never asked before: no cache hit); None when it came back
    whole, else what went wrong."""
    body = {"messages": [{"role": "user", "content": f"Give me tip number {n} ({RUN})."}],
            "max_tokens": 4, "temperature": 0, "stream": stream}
    try:
        reply = httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=120)
    except httpx.HTTPError as exc:
        return f"request {n}: {type(exc).__name__}"
    if reply.status_code != 200:
        return f"request {n}: HTTP {reply.status_code} {reply.text[:200]}"
    if stream:
        if "data: [DONE]" not in reply.text or '"finish_reason":"' not in reply.text.replace(
                " ", ""):
            return f"request {n}: stream ended early: {reply.text[-300:]}"
        if '"error"' in reply.text:
            return f"request {n}: error event: {reply.text[-300:]}"
    elif reply.json()["choices"][0]["finish_reason"] is None:
        return f"request {n}: no finish reason"
    return None


def test_both_routers_get_traffic_and_stopping_one_loses_nothing(stack) -> None:
    gateway = f"http://{stack.spec('gateway').address}"
    before = {name: chats_served(stack, name) for name in ("router", "router-b")}

    failures: list[str] = []
    done = {"count": 0}
    stop_at = time.monotonic() + 600
    counter = iter(range(10_000))
    lock = threading.Lock()
    running = threading.Event()
    running.set()

    def client(stream: bool) -> None:
        while running.is_set() and time.monotonic() < stop_at:
            with lock:
                n = next(counter)
            problem = ask(gateway, n, stream=stream)
            with lock:
                done["count"] += 1
                if problem:
                    failures.append(problem)

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        while done["count"] < 12:
            time.sleep(0.1)
        during = {name: chats_served(stack, name) - before[name]
                  for name in ("router", "router-b")}
        assert during["router"] > 0 and during["router-b"] > 0, (during, failures[:3])

        codes = stack.stop(["router"], timeout=60)  # SIGTERM while chats are in flight
        assert codes == {"router": 0}, os.listdir(stack.log_dir or ".")
        after_stop = done["count"]
        while done["count"] < after_stop + 8:
            time.sleep(0.1)
    finally:
        running.clear()
        for thread in threads:
            thread.join(180)
    assert failures == []
    assert chats_served(stack, "router-b") - before["router-b"] > during["router-b"]
