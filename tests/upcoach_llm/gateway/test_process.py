"""``python -m upcoach_llm.gateway`` as a process: starts, answers, and exits 0 after a SIGTERM
drain."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from tests.support.paths import REPO_ROOT
from tests.upcoach_llm.gateway.doubles import UpstreamDouble
from upcoach_llm.dev.ports import free_port


async def test_sigterm_drains_and_exits_0(double: UpstreamDouble) -> None:
    port = free_port()
    env = {**os.environ, "GATEWAY_PORT": str(port), "GATEWAY_HOST": "127.0.0.1",
           "ROUTER_ADDR": double.address, "EMBEDDING_ADDR": double.address,
           "MODEL_REGISTRY_ADDR": double.address, "GENERATION_ADDR": double.address,
           "LOG_LEVEL": "info"}
    env.pop("LLM_API_KEY", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "upcoach_llm.gateway", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    health = await client.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health.json()["status"] == "ok"
            reply = await client.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "hi"}]})
            assert reply.json()["choices"][0]["message"]["content"] == "echo: hi"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    log = stderr.decode()
    assert "AUTH IS OFF" in log
    assert "stopped after a graceful drain" in log
