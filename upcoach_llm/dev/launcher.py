"""``make run`` / ``upcoach-stack``: the whole stack on this machine, on the embedded engines.

    upcoach-stack [--only generation,router] [--no-gateway] [--timeout 180]

Each service runs as its own process on its port (``<NAME>_PORT``, else the topology's); the
launcher waits until each answers its health probe, prints where it listens, and on Ctrl-C or
SIGTERM stops them all with their graceful drain. The gRPC services listen on 127.0.0.1 (unless
GRPC_HOST says otherwise) and require the internal token: the launcher generates
INTERNAL_TOKEN and INTERNAL_ADMIN_TOKEN unless the environment sets them, hands them to every
process, and writes them to
build/run/internal-tokens.env (mode 0600, under the working directory) for grpcurl and
upcoach_client; where it cannot (a read-only working directory, as in the image), it says so and
starts the stack all the same. If one service exits, the launcher stops the rest and exits 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from upcoach_llm.api.topology import GATEWAY, SERVICES
from upcoach_llm.dev.stack import Stack, default_specs

TOKEN_FILE = Path("build", "run", "internal-tokens.env")


def write_tokens(env: dict[str, str], path: Path = TOKEN_FILE) -> str:
    """Writes the internal tokens, readable by this user only, for grpcurl and upcoach_client;
    returns where the user finds them (the file, or why there is none)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            for name in ("INTERNAL_TOKEN", "INTERNAL_ADMIN_TOKEN"):
                handle.write(f"{name}={env[name]}\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        print(f"==> warning: cannot write the internal tokens to {path} ({exc.strerror}); the "
              "services get them all the same. Export INTERNAL_TOKEN before starting to know it.",
              file=sys.stderr, flush=True)
        return "INTERNAL_TOKEN (not written: see the warning above)"
    return str(path)


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
        names = [n for n in names if n != GATEWAY.name]

    stack = Stack(specs)
    tokens_at = write_tokens(stack.env)
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
    print(f"\n    gRPC services take the internal token in {tokens_at}", flush=True)
    if GATEWAY.name in took:
        print(f"    try: curl http://localhost:{stack.spec(GATEWAY.name).port}/health",
              flush=True)
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
