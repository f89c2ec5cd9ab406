"""The cost of tracing on the hot path: JSON chat at 32 clients, tracing off and on, same run.

    .venv/bin/python -m bench.bench_tracing [--duration 4] [--rounds 3] [--clients 32]
                                            [--chunks 20] [--json PATH]

One run starts, each as its own process on a free port: the fake upstream (bench/fake_upstream.py,
the only backend, as in bench/bench_peer.py), a trace sink (an OTLP/HTTP receiver that counts the
spans it is sent and discards them), and three router + gateway stacks in front of the upstream:

- ``off``: tracing off (no OTEL_* variable: nothing of OpenTelemetry is loaded);
- ``off-2``: the same again, whose figures against ``off`` are the noise floor of the measurement;
- ``on``: tracing on, sampling every request (OTEL_TRACES_SAMPLER=always_on), spans exported in
  batches over OTLP/HTTP to the sink: four spans a request (the gateway's HTTP span, the router's
  RPC span, its ``router.decide`` and its ``chat {model}`` call).

Then rounds of the same closed-loop load (bench/bench_peer.py's generator: ``--clients``
keep-alive connections, ``POST /v1/chat/completions`` without ``stream``, a reply of ``--chunks``
words) go to each stack in turn, the order alternating between rounds; each figure is the median
of the rounds' completed replies per second. The rows: ``on`` against ``off`` (goal: at most 10%
fewer req/s), ``off-2`` against ``off`` (goal: within 1%).

What "off" costs compared with the code before tracing cannot be measured in one run of one
checkout: the code paths differ only by reads of ``tracing.ENABLED`` (a module attribute, a few
per request) and a FastAPI telemetry check now skipped, so the off-vs-off row gives the floor any
such difference would have to clear. Everything shares the machine (2 cores here): figures compare
the stacks with each other in the same run, not absolute capacities.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.bench_peer import (
    Load,
    Scenario,
    Target,
    check_reply,
    load,
    progress,
    run_loop,
)
from bench.fake_upstream import FakeUpstream
from bench.proc_cpu import process_tree
from bench.report import Row, add_json_argument, format_table, write_rows
from bench.support import start_stack
from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack

UPSTREAM_MODEL = "fake-model"
CATALOG_MODEL = "mistral"
JSON_CHAT = Scenario("json", "JSON chat", False, 0.0)


# --- the trace sink ---------------------------------------------------------------------------

def serve_sink(port: int) -> None:
    """``python -m bench.bench_tracing --sink PORT``: accepts OTLP/HTTP span batches, counts the
    spans, discards them; ``GET /stats`` answers "<requests> <spans>"."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    counts = [0, 0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            batch = ExportTraceServiceRequest.FromString(body)
            counts[0] += 1
            counts[1] += sum(len(s.spans) for r in batch.resource_spans for s in r.scope_spans)
            self._answer(b"")

        def do_GET(self) -> None:
            self._answer(f"{counts[0]} {counts[1]}".encode())

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class Sink:
    """The sink as a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "bench.bench_tracing", "--sink",
                                         str(self.port)])
        deadline = time.monotonic() + 20
        while self.stats() is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the trace sink did not start")
            time.sleep(0.1)

    def stats(self) -> tuple[int, int] | None:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/stats")
            requests, spans = connection.getresponse().read().split()
            return int(requests), int(spans)
        except OSError:
            return None
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- the stacks -------------------------------------------------------------------------------

def start_traced_stack(upstream: FakeUpstream, label: str, tracing_env: dict[str, str]) -> Stack:
    env = {"VLLM_URL": f"{upstream.url}/v1", "VLLM_MODEL": UPSTREAM_MODEL,
           "VLLM_CATALOG_MODEL": CATALOG_MODEL, "EMBEDDED_BACKEND": "false",
           "CACHE_MODE": "off", "RATE_LIMIT_RPM": "0",
           "REDIS_KEY_PREFIX": f"upcoach:bench:{uuid.uuid4().hex[:8]}:", **tracing_env}
    return start_stack(["router", "gateway"], env, label=label, timeout=180)


def target_of(key: str, stack: Stack) -> Target:
    return Target(key, f"stack, tracing {key}", stack.spec("gateway").address, CATALOG_MODEL,
                  lambda: [p.pid for p in stack.processes.values()])


async def measure(targets: list[Target], chunks: int, clients: int, duration: float,
                  rounds: int, warmup: float) -> dict[str, list[Load]]:
    for target in targets:
        check_reply(target, JSON_CHAT, chunks)
        run = await load(target, JSON_CHAT, chunks, clients, warmup)
        if run.errors:
            raise RuntimeError(f"warm-up of {target.label}: {run.errors} errors, the first: "
                               f"{run.first_error}")
    progress("checked and warmed up")
    results: dict[str, list[Load]] = {t.key: [] for t in targets}
    for index in range(rounds):
        order = targets if index % 2 == 0 else list(reversed(targets))
        for target in order:
            run = await load(target, JSON_CHAT, chunks, clients, duration)
            results[target.key].append(run)
            progress(f"round {index + 1}/{rounds}  {target.key:<6} {run.requests_per_s:8,.0f} "
                     f"req/s  p50 {run.p50_ms:7.2f} ms  ({run.replies} replies, "
                     f"{run.errors} errors, CPU {run.cpu_s or 0:.2f} s)")
            if run.errors:
                progress(f"  warning: {run.errors} errors, the first: {run.first_error}")
    return results


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rows_for(results: dict[str, list[Load]], clients: int) -> list[Row]:
    def rate(key: str) -> float:
        return _median([r.requests_per_s for r in results[key]])

    def cpu_per_reply(key: str) -> float:
        return _median([r.cpu_s * 1000 / r.replies for r in results[key]
                        if r.cpu_s is not None and r.replies])

    return [
        Row.measured(f"JSON chat, {clients} clients: tracing on (100%, exported)", rate("on"),
                     "req/s", baseline=rate("off"), baseline_name="tracing off, same run",
                     target=">= 0.90x tracing off"),
        Row.measured(f"JSON chat, {clients} clients: tracing off, second stack", rate("off-2"),
                     "req/s", baseline=rate("off"), baseline_name="tracing off, same run",
                     target="0.99x-1.01x (noise floor)"),
        Row.measured("JSON chat: stack CPU per reply, tracing on", cpu_per_reply("on"),
                     "ms CPU", baseline=cpu_per_reply("off"),
                     baseline_name="tracing off, same run"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0,
                        help="seconds per load run (default: 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument("--clients", type=int, default=32, help="connections (default: 32)")
    parser.add_argument("--chunks", type=int, default=20, help="words per reply (default: 20)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of warm-up load per stack (default: 1)")
    parser.add_argument("--sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    add_json_argument(parser)
    args = parser.parse_args()
    if args.sink:
        serve_sink(args.sink)
        return

    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    for name in ("LLM_API_KEY", "OLLAMA_URL", "OLLAMA_PORT"):
        os.environ.pop(name, None)
    progress(f"{os.cpu_count()} CPUs; starting the fake upstream, the trace sink and 3 stacks...")
    stacks: dict[str, Stack] = {}
    sink = None
    with FakeUpstream(free_port(), chunks=args.chunks, model=UPSTREAM_MODEL) as upstream:
        try:
            sink = Sink()
            stacks["off"] = start_traced_stack(upstream, "tracing-off", {})
            stacks["on"] = start_traced_stack(upstream, "tracing-on", {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_TRACES_SAMPLER": "always_on"})
            stacks["off-2"] = start_traced_stack(upstream, "tracing-off-2", {})
            progress("stacks ready; idle processes: " + ", ".join(
                f"{k} {len(process_tree([p.pid for p in s.processes.values()]))}"
                for k, s in stacks.items()))
            targets = [target_of(key, stacks[key]) for key in ("off", "on", "off-2")]
            results = run_loop(measure(targets, args.chunks, args.clients, args.duration,
                                       args.rounds, args.warmup))
            time.sleep(1.0)  # the last batch of spans
            exported = sink.stats() or (0, 0)
        finally:
            for stack in stacks.values():
                stack.stop()
            if sink is not None:
                sink.stop()
    replies = sum(r.replies for r in results["on"])
    print(f"{args.rounds} rounds x {args.duration:g}s per stack; {args.chunks} words per JSON "
          f"reply; {args.clients} clients; the sink got {exported[1]:,} spans in "
          f"{exported[0]:,} batches ({exported[1] / max(replies, 1):.1f} per reply counted, "
          "warm-up included)")
    rows = rows_for(results, args.clients)
    print(format_table({"tracing: cost on the hot path": rows}))
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
