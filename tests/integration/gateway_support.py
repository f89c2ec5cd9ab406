"""Helpers for the gateway's integration tests: extra gateway processes and a private Redis.

``GatewayProcess`` runs ``python -m upcoach_llm.gateway`` against a running stack's services (its
own port
and settings), the way a second replica would run, and waits until it is ready (/readyz: a chat
can be served), or only alive (/livez) when asked. ``PrivateRedis`` is a throwaway redis-server
on a free port that a test may stop and start; the machine's shared Redis is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping

import httpx
import redis

from tests.support.paths import REPO_ROOT
from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack, wiring_env


class GatewayProcess:
    """One ``python -m upcoach_llm.gateway`` wired to the stack's services."""

    def __init__(self, stack: Stack, env: Mapping[str, str], wait_path: str = "/readyz") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)  # noqa: SIM115
        full_env = {**os.environ, **wiring_env(stack.specs), **stack.env, **env,
                    "GATEWAY_PORT": str(self.port), "GATEWAY_HOST": "127.0.0.1"}
        self.process = subprocess.Popen([sys.executable, "-m", "upcoach_llm.gateway"],
        cwd=REPO_ROOT,
                                        env=full_env, stdout=self.log, stderr=self.log)
        self._wait_ready(wait_path)

    def _wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited {self.process.returncode}: {self.logs()}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gateway: {path} not 200 after {timeout}s: {self.logs()}")

    def logs(self) -> str:
        with open(self.log.name) as handle:
            return handle.read()[-3000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        os.unlink(self.log.name)
        return self.process.wait()


class PrivateRedis:
    """redis-server on a free port, in the foreground of a child process we own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
