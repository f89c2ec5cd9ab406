"""Starts the whole stack as separate processes on the embedded defaults (``make run``).

    python -m services.stack [--only generation,router] [--no-gateway]

Each service runs as its own ``python -m`` process on its own port; the launcher waits until
each answers its health probe (the gateway: ``/readyz``), prints where it listens, and on Ctrl-C
or SIGTERM sends SIGTERM to all of them and waits for their graceful drain. The gRPC services
listen on 127.0.0.1 only (GRPC_HOST) and require the internal token: the launcher generates
INTERNAL_TOKEN and INTERNAL_ADMIN_TOKEN unless the environment sets them, hands them to every
process, and writes them to build/run/internal-tokens.env (mode 0600) for grpcurl and
upcoach_client. The tests use the same code (``Stack``) to start real processes on free ports.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import grpc
import httpx

from services.common.channels import authed
from services.common.config import REPO_ROOT
from services.common.health_probe import check
from services.common.internal_auth import InternalAuth, tls_from_env
from services.common.topology import GENERATION, SERVICES, Service

TOKEN_FILE = REPO_ROOT / "build" / "run" / "internal-tokens.env"

# Ports handed to processes come from below Linux's ephemeral range (32768-60999), so an
# outgoing connection cannot take one between the pick and the process binding it.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never handed out before by this process."""
    for _ in range(500):
        port = random.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE}")


@dataclass
class ProcessSpec:
    """One service process of the topology, on a port."""

    service: Service
    port: int

    @property
    def name(self) -> str:
        return self.service.name

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
    """The variables that tell each process its own port and where the others listen."""
    env = {spec.service.port_env: str(spec.port) for spec in specs}
    env.update({spec.service.addr_env: spec.address for spec in specs if spec.service.grpc})
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
            self.processes[spec.name] = subprocess.Popen(
                [sys.executable, "-m", spec.service.module], env=env, stdout=out, stderr=out)

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


def write_tokens(env: dict[str, str]) -> None:
    """The internal tokens, readable by this user only, for grpcurl and upcoach_client."""
    TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for name in ("INTERNAL_TOKEN", "INTERNAL_ADMIN_TOKEN"):
            handle.write(f"{name}={env[name]}\n")
    os.chmod(TOKEN_FILE, 0o600)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Start the UpCoach LLM stack (each service a separate process) on the "
                    "embedded engines. Ports come from "
                    + ", ".join(s.port_env for s in SERVICES) + ".")
    parser.add_argument("--only", help="comma-separated services to start (default: all)")
    parser.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for every service to become healthy")
    args = parser.parse_args()

    ports = {}
    for spec in default_specs():
        value = os.environ.get(spec.service.port_env)
        if value:
            ports[spec.name] = int(value)
    specs = default_specs(ports)
    names = [s.name for s in specs]
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
    if args.no_gateway:
        names = [n for n in names if n != "gateway"]

    stack = Stack(specs)
    write_tokens(stack.env)
    stopping = False

    def shut_down(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\n==> stopping the stack (graceful drain)...", flush=True)
        codes = stack.stop()
        print("==> stopped: " + ", ".join(f"{n} exit {c}" for n, c in codes.items()), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)
    print(f"==> starting {', '.join(names)} (logs below, JSON lines)", flush=True)
    stack.start(names)
    try:
        took = stack.wait_ready(args.timeout)
    except (RuntimeError, TimeoutError) as exc:
        print(f"==> start-up failed: {exc}", file=sys.stderr, flush=True)
        stack.stop()
        sys.exit(1)
    print("\n==> the stack is up:", flush=True)
    for spec in specs:
        if spec.name in took:
            kind = "http" if spec.http else "grpc"
            print(f"    {spec.name:<15} {kind}://{spec.address:<18} "
                  f"ready in {took[spec.name]:.1f}s", flush=True)
    print(f"\n    gRPC services take the internal token in {TOKEN_FILE}", flush=True)
    if "gateway" in took:
        print(f"    try: curl http://localhost:{stack.spec('gateway').port}/health", flush=True)
    print("    Ctrl-C stops everything.\n", flush=True)
    while True:
        pid, status = os.wait()
        name = next((n for n, p in stack.processes.items() if p.pid == pid), None)
        if name is not None and not stopping:
            stack.processes[name].returncode = os.waitstatus_to_exitcode(status)
            print(f"==> {name} exited with code {stack.processes[name].returncode}; "
                  "stopping the rest", file=sys.stderr, flush=True)
            del stack.processes[name]
            stack.stop()
            sys.exit(1)

if __name__ == "__main__":
    main()
