"""Starts the stack's services as separate processes on ports of its choosing (the test harness).

``Stack`` runs each service of the topology as its own ``python -m`` process, with the variables
that wire them together (wiring_env), loopback-only gRPC (GRPC_HOST) and internal tokens (the
environment's, else new ones); ``wait_ready`` waits for each health probe (the gateway:
``/readyz``), ``stop`` sends SIGTERM and waits for the graceful drain. The launcher
(upcoach_llm.dev.launcher, ``make run``), the tests and the benches use it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import grpc
import httpx

from upcoach_llm.api.topology import GENERATION, SERVICES, Service
from upcoach_llm.common.channels import authed
from upcoach_llm.common.health_probe import check
from upcoach_llm.common.internal_auth import InternalAuth, tls_from_env


@dataclass
class ProcessSpec:
    """One service process of the topology, on a port; ``replica`` names a second (third...)
    process of the same service, ``env`` holds variables for this process alone."""

    service: Service
    port: int
    replica: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service.name}-{self.replica}" if self.replica else self.service.name

    @property
    def http(self) -> bool:
        return not self.service.grpc

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def default_specs(ports: dict[str, int] | None = None) -> list[ProcessSpec]:
    """The stack's processes in start order, on the default ports unless given; the gateway
    only where its package is there."""
    ports = ports or {}
    return [ProcessSpec(s, ports.get(s.name, s.port)) for s in SERVICES
            if s.grpc or importlib.util.find_spec(f"{s.module}.__main__") is not None]


def wiring_env(specs: list[ProcessSpec]) -> dict[str, str]:
    """The variables that tell each process where the others listen (and, for a single process
    of a service, its port): the replicas of a service are one ``ipv4:a,b`` target."""
    replicas: dict[Service, list[ProcessSpec]] = {}
    for spec in specs:
        replicas.setdefault(spec.service, []).append(spec)
    env = {}
    for service, group in replicas.items():
        env[service.port_env] = str(group[0].port)
        if service.grpc:
            env[service.addr_env] = (group[0].address if len(group) == 1 else
                                     "ipv4:" + ",".join(s.address for s in group))
    return env


@dataclass
class Stack:
    """A set of running service processes."""

    specs: list[ProcessSpec]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: str | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Internal tokens (the environment's, else new ones) and loopback-only gRPC ports."""
        for name in ("INTERNAL_TOKEN", "INTERNAL_ADMIN_TOKEN"):
            self.env.setdefault(name, os.environ.get(name) or secrets.token_urlsafe(32))
        self.env.setdefault("GRPC_HOST", os.environ.get("GRPC_HOST") or "127.0.0.1")

    @property
    def auth(self) -> InternalAuth:
        """The credentials a caller of the stack's services presents."""
        return InternalAuth(token=self.env["INTERNAL_TOKEN"],
                            admin_token=self.env["INTERNAL_ADMIN_TOKEN"])

    def stub(self, name: str, stub_class: type, *, admin: bool = False):
        """A blocking stub of the named service whose calls carry the internal token."""
        channel = grpc.insecure_channel(self.spec(name).address)
        return authed(stub_class(channel), self.auth, admin=admin)

    def start(self, names: list[str] | None = None) -> None:
        """Starts the named processes (default all) without waiting for them."""
        env = {**os.environ, **wiring_env(self.specs), **self.env}
        for spec in self.specs:
            if names is not None and spec.name not in names:
                continue
            out = None
            if self.log_dir:
                out = open(os.path.join(self.log_dir, f"{spec.name}.log"), "ab")  # noqa: SIM115
            own = {spec.service.port_env: str(spec.port), **spec.env}
            self.processes[spec.name] = subprocess.Popen(
                [sys.executable, "-m", spec.service.module], env={**env, **own}, stdout=out,
                stderr=out)

    def spec(self, name: str) -> ProcessSpec:
        return next(s for s in self.specs if s.name == name)

    def is_ready(self, spec: ProcessSpec) -> bool:
        if spec.http:
            try:
                # A stack without generation cannot chat: its gateway is up once it is alive.
                path = "/readyz" if GENERATION.name in self.processes else "/livez"
                return httpx.get(f"http://{spec.address}{path}", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        probe_auth = InternalAuth(tls=tls_from_env({**os.environ, **self.env}))
        return check(spec.address, timeout=1.0, auth=probe_auth) == "SERVING"

    def wait_ready(self, timeout: float = 120.0,
                   names: list[str] | None = None) -> dict[str, float]:
        """Waits until every started process is healthy; returns seconds each took."""
        started = time.monotonic()
        pending = [s for s in self.specs if s.name in self.processes
                   and (names is None or s.name in names)]
        ready: dict[str, float] = {}
        while pending:
            for spec in list(pending):
                code = self.processes[spec.name].poll()
                if code is not None:
                    raise RuntimeError(f"{spec.name} exited with code {code} before it was ready")
                if self.is_ready(spec):
                    ready[spec.name] = time.monotonic() - started
                    pending.remove(spec)
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"not ready after {timeout:.0f}s: "
                                   + ", ".join(s.name for s in pending))
            if pending:
                time.sleep(0.1)
        return ready

    def stop(self, names: list[str] | None = None, timeout: float = 20.0) -> dict[str, int]:
        """Sends SIGTERM, waits for the drain, kills what is left; returns exit codes."""
        chosen = {n: p for n, p in self.processes.items() if names is None or n in names}
        for process in chosen.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + timeout
        for name, process in chosen.items():
            try:
                codes[name] = process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
            del self.processes[name]
        return codes
