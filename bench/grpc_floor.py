"""The floor under the stack's relay: one bare gRPC hop, streaming a message per token.

    .venv/bin/python -m bench.grpc_floor [--clients 32] [--chunks 20] [--token-delay-ms 10]
                                         [--duration 5]

The stack relays each token over gRPC from the router to the gateway (one ChatStreamResponse
per token while the reader keeps up: common/coalesce.py). This measures what that hop alone
costs, with nothing of the stack around it: a grpc.aio server on uvloop (as the router runs)
whose ChatStream sends ``--chunks`` text messages ``--token-delay-ms`` apart and a finish
message, and ``--clients`` closed-loop callers on one channel with the stack's channel options
(common/channels.py), on uvloop (as the gateway runs), each in its own process. The figure is
the CPU (utime + stime from /proc) of both processes over the text messages they passed:
the CPU per relayed token that any relay of this design pays before doing anything else.

bench/bench_peer.py runs it in every round, under the same load as its paced scenario, as the
baseline of the stack's CPU per relayed token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvloop

from bench.proc_cpu import cpu_seconds
from upcoach_llm.api import common_pb2, router_pb2, router_pb2_grpc
from upcoach_llm.common.channels import CHANNEL_OPTIONS
from upcoach_llm.dev.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
_TEXT = "habit "  # a token's worth of text
_STOP = router_pb2.ChatStreamResponse(finish_reason=common_pb2.FINISH_REASON_STOP)


@dataclass(frozen=True)
class Floor:
    """What one run of the bare hop saw."""

    messages: int  # text messages read by the clients
    calls: int  # calls that ended with their finish message
    server_cpu_s: float
    client_cpu_s: float

    @property
    def cpu_ms_per_message(self) -> float | None:
        """Both ends' CPU per text message, in milliseconds."""
        if not self.messages:
            return None
        return (self.server_cpu_s + self.client_cpu_s) * 1000 / self.messages


class _Paced(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, chunks: int, delay_s: float) -> None:
        self._chunks, self._delay_s = chunks, delay_s

    async def ChatStream(self, request, context):
        for _ in range(self._chunks):
            await asyncio.sleep(self._delay_s)
            yield router_pb2.ChatStreamResponse(text=_TEXT)
        yield _STOP


async def _serve(port: int, chunks: int, delay_s: float) -> None:
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServiceServicer_to_server(_Paced(chunks, delay_s), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("listening", flush=True)
    await server.wait_for_termination()


async def _load(address: str, clients: int, duration: float, server_pid: int) -> None:
    """Closed-loop callers for ``duration`` seconds; prints messages and both processes' CPU."""
    channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    stub = router_pb2_grpc.RouterServiceStub(channel)
    request = router_pb2.ChatStreamRequest(model="floor")
    async for _ in stub.ChatStream(request):  # connected and warm before counting
        pass
    counted = calls = 0
    deadline = time.monotonic() + duration

    async def caller() -> None:
        nonlocal counted, calls
        while time.monotonic() < deadline:
            async for message in stub.ChatStream(request):
                if message.text:
                    counted += 1
                elif message.finish_reason:
                    calls += 1

    server, client = [server_pid], [os.getpid()]
    server_before, client_before = cpu_seconds(server) or 0.0, cpu_seconds(client) or 0.0
    await asyncio.gather(*(caller() for _ in range(clients)))
    server_cpu = (cpu_seconds(server) or 0.0) - server_before
    client_cpu = (cpu_seconds(client) or 0.0) - client_before
    await channel.close()
    print(f"{counted} {calls} {server_cpu:.3f} {client_cpu:.3f}", flush=True)


def measure(clients: int, chunks: int, delay_ms: float, duration: float) -> Floor:
    """One run of the bare hop: a server and a client process, both stopped before returning."""
    port = free_port()
    command = [sys.executable, "-m", "bench.grpc_floor", "--chunks", str(chunks),
               "--token-delay-ms", str(delay_ms)]
    server = subprocess.Popen([*command, "--serve", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(server.stdout, selectors.EVENT_READ)
            started = selector.select(timeout=60) and "listening" in server.stdout.readline()
        if not started:
            raise RuntimeError(f"the gRPC floor server did not start (exit {server.poll()})")
        client = subprocess.run(
            [*command, "--load", f"127.0.0.1:{port}", "--server-pid", str(server.pid),
             "--clients", str(clients), "--duration", str(duration)],
            cwd=ROOT, capture_output=True, text=True, timeout=duration + 120, check=False)
        if client.returncode != 0:
            raise RuntimeError(f"the gRPC floor client failed: {client.stderr.strip()[-500:]}")
        messages, calls, server_cpu, client_cpu = client.stdout.split()
        return Floor(int(messages), int(calls), float(server_cpu), float(client_cpu))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument("--chunks", type=int, default=20, help="text messages per call (20)")
    parser.add_argument("--token-delay-ms", type=float, default=10.0,
                        help="delay before each text message (10)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load (5)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        uvloop.run(_serve(args.serve, args.chunks, args.token_delay_ms / 1000))
    elif args.load is not None:
        uvloop.run(_load(args.load, args.clients, args.duration, args.server_pid))
    else:
        floor = measure(args.clients, args.chunks, args.token_delay_ms, args.duration)
        print(f"{floor.messages} text messages; CPU server {floor.server_cpu_s:.2f} s, client "
              f"{floor.client_cpu_s:.2f} s: {floor.cpu_ms_per_message:.3f} ms per message")


if __name__ == "__main__":
    main()
