"""What the internal token check adds to each gRPC call.

    .venv/bin/python -m bench.bench_internal_auth [--calls 3000] [--rounds 5] [--json PATH]

Two in-process gRPC servers on loopback with the stack's bootstrap (upcoach_llm.common.server),
one requiring the internal token and one with internal auth off, answer the same trivial unary
RPC; the calls alternate between them in rounds so machine noise hits both alike. Reported: the
median per-call latency with the check (baseline: without), their difference, and the check
itself (``InternalAuth.refusal``) timed alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit

import grpc

from bench.report import Row, add_json_argument, write_rows
from upcoach_llm.api import router_pb2, router_pb2_grpc
from upcoach_llm.common.channels import authed
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.server import GrpcService, open_server

AUTH = InternalAuth(token="bench-internal-token-0123456789", admin_token="bench-admin-0123456789")
ROUTE = "/upcoach.llm.v1.RouterService/Route"


class Echo(router_pb2_grpc.RouterServiceServicer):
    async def Route(self, request, context):
        return router_pb2.RouteResponse()


class Service(GrpcService):
    def service_names(self) -> list[str]:
        return [router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        router_pb2_grpc.add_RouterServiceServicer_to_server(Echo(), server)


async def per_call_ms(stub, calls: int) -> float:
    request = router_pb2.RouteRequest(model="mistral")
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.Route(request)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def bench(calls: int, rounds: int) -> tuple[float, float]:
    servers = {"on": await open_server(Service(), "127.0.0.1", 0, auth=AUTH),
               "off": await open_server(Service(), "127.0.0.1", 0,
                                        auth=InternalAuth.disabled())}
    results: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for running in servers.values():
            await running.mark_serving()
        channels = {name: grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
                    for name, running in servers.items()}
        stubs = {name: authed(router_pb2_grpc.RouterServiceStub(channel), AUTH)
                 for name, channel in channels.items()}
        for stub in stubs.values():
            await per_call_ms(stub, 200)  # warm-up
        for _ in range(rounds):
            for name, stub in stubs.items():
                results[name].append(await per_call_ms(stub, calls))
        for channel in channels.values():
            await channel.close()
    finally:
        for running in servers.values():
            await running.server.stop(0)
    return statistics.median(results["on"]), statistics.median(results["off"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Latency the internal token check adds to a gRPC call (in-process servers "
                    "with and without it, alternating), and the check alone.")
    parser.add_argument("--calls", type=int, default=3000, help="calls per round and server")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is shown")
    add_json_argument(parser)
    args = parser.parse_args()
    on, off = asyncio.run(bench(args.calls, args.rounds))
    metadata = AUTH.metadata()
    loops = 200_000
    check_us = timeit.timeit(lambda: AUTH.refusal(ROUTE, metadata), number=loops) / loops * 1e6
    print(f"unary call p50: {on:.3f} ms with the token check, {off:.3f} ms without "
          f"(+{(on - off) * 1000:.1f} us); the check alone: {check_us:.2f} us")
    if args.json:
        write_rows(args.json, [
            Row.measured("unary gRPC call with the internal token check", on, "ms",
                         baseline=off, baseline_name="same server, internal auth off",
                         target="report"),
            Row.measured("internal token check, added per call", (on - off) * 1000, "us",
                         target="< 100 us"),
            Row.measured("internal token check alone (InternalAuth.refusal)", check_us, "us",
                         target="< 100 us")])


if __name__ == "__main__":
    main()
