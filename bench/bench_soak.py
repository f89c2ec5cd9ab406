"""Soak: the whole embedded stack under closed-loop chat load, and what it costs over time.

    .venv/bin/python -m bench.bench_soak [--duration 300] [--concurrency 16] [--max-tokens 32]
                                         [--warmup 30] [--json PATH]

Starts every service as a real process (API key on, rate limit off, Redis on 127.0.0.1:6379
with a key prefix of its own), warms up under the same load (``--warmup``), then keeps
``--concurrency`` clients busy for ``--duration`` seconds: each sends a chat (every other one
streamed, temperature 0.7 so the cache never answers), waits for the whole reply, and sends the
next; a refused chat (429, 503) waits its Retry-After (else 1 s, at most 5 s) before the next,
as the OpenAI SDK would. It reports the status codes seen (the goal: no 5xx, only 429s when
saturated), chat latency p50/p99 for the answered ones, and each process's resident memory after
the warm-up and at the end (goal: < 5% growth). The baseline of the latency rows is a single chat
on the idle stack, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
import uuid

import httpx

from bench.report import Row, add_json_argument, write_rows
from bench.support import start_stack
from upcoach_llm.dev.stack import Stack

KEY = "soak-" + uuid.uuid4().hex
PROMPTS = ["Give me a motivation tip", "How do I keep a morning routine?",
           "Help me set a goal for this week", "I skipped the gym again, what now?",
           "A quick reminder to drink water", "Write an affirmation about patience"]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_soak_stack(max_queue: int | None) -> Stack:
    env = {"LLM_API_KEY": KEY, "RATE_LIMIT_RPM": "0",
           "REDIS_KEY_PREFIX": f"upcoach:bench:{uuid.uuid4().hex[:8]}:"}
    if max_queue is not None:
        env["GENERATION_MAX_QUEUE"] = str(max_queue)
    return start_stack(env=env, label="soak")


async def one_chat(client: httpx.AsyncClient, index: int, max_tokens: int,
                   ) -> tuple[int, float, float]:
    body = {"messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
            "max_tokens": max_tokens, "temperature": 0.7, "stream": index % 2 == 1}
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
            async for _ in reply.aiter_bytes():
                pass
            status = reply.status_code
            retry_after = float(reply.headers.get("Retry-After", "1"))
    except httpx.HTTPError:
        status, retry_after = 0, 1.0  # a dropped connection: counted as an error
    return status, time.perf_counter() - started, retry_after


async def soak(url: str, duration: float, concurrency: int, max_tokens: int,
               ) -> tuple[collections.Counter, list[float], float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits,
                                 headers=headers) as client:
        _, idle, _ = await one_chat(client, 0, max_tokens)
        codes: collections.Counter = collections.Counter()
        latencies: list[float] = []
        deadline = time.monotonic() + duration
        next_report = time.monotonic() + 30

        async def worker(offset: int) -> None:
            nonlocal next_report
            index = offset
            while time.monotonic() < deadline:
                status, seconds, retry_after = await one_chat(client, index, max_tokens)
                codes[status] += 1
                if status == 200:
                    latencies.append(seconds)
                elif status in (0, 429, 503):
                    await asyncio.sleep(min(retry_after, 5.0))  # as a well-behaved client
                index += concurrency
                if time.monotonic() >= next_report:
                    next_report += 30
                    left = max(0.0, deadline - time.monotonic())
                    print(f"  ... {sum(codes.values())} chats, {dict(codes)}, {left:.0f}s left",
                          file=sys.stderr, flush=True)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return codes, latencies, idle


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Closed-loop chat soak on the whole embedded stack: status codes, latency "
                    "p50/p99 and resident memory growth per process.")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load (300)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once (16)")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per reply (32)")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="GENERATION_MAX_QUEUE for the run (default: the service's, 16); "
                             "below --concurrency the queue fills and refusals show")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds of the same load before the first memory reading (30)")
    add_json_argument(parser)
    args = parser.parse_args()

    print(f"==> starting the stack, then {args.concurrency} clients for {args.duration:.0f}s",
          file=sys.stderr, flush=True)
    stack = start_soak_stack(args.max_queue)
    try:
        url = f"http://{stack.spec('gateway').address}"
        # Warm-up under the same load: llama.cpp's per-position buffers, pools and allocators
        # are first touched here, so what grows afterwards is growth, not first use.
        asyncio.run(soak(url, args.warmup, args.concurrency, args.max_tokens))
        pids = {name: process.pid for name, process in stack.processes.items()}
        before = {name: rss_kib(pid) for name, pid in pids.items()}
        codes, latencies, idle = asyncio.run(
            soak(url, args.duration, args.concurrency, args.max_tokens))
        after = {name: rss_kib(pid) for name, pid in pids.items()}
    finally:
        stack.stop()

    total = sum(codes.values())
    errors_5xx = sum(n for code, n in codes.items() if code >= 500 or code == 0)
    print(f"\n{total} chats in {args.duration:.0f}s at {args.concurrency} clients: "
          f"{dict(sorted(codes.items()))}")
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"answered chats: p50 {p50:.2f}s, p99 {p99:.2f}s (idle single chat {idle:.2f}s)")
    print(f"{'process':<15} {'RSS after warm-up':>18} {'RSS at end':>12} {'growth':>8}")
    for name in pids:
        growth = (after[name] - before[name]) / before[name] * 100 if before[name] else 0.0
        print(f"{name:<15} {before[name] / 1024:>15.1f} MB {after[name] / 1024:>9.1f} MB "
              f"{growth:>7.1f}%")
    if args.json:
        rows = [Row.measured("soak: 5xx or dropped chats", errors_5xx, "requests",
                             target="0 (only 429s when saturated)"),
                Row.measured("soak: 429 (busy) chats", codes.get(429, 0), "requests",
                             target="report"),
                Row.measured("soak: answered chats", codes.get(200, 0), "requests",
                             target="report"),
                Row.measured("soak: chat p50", p50 * 1000, "ms", baseline=idle * 1000,
                             baseline_name="one chat on the idle stack", target="report"),
                Row.measured("soak: chat p99", p99 * 1000, "ms", baseline=idle * 1000,
                             baseline_name="one chat on the idle stack", target="report")]
        rows += [Row.measured(f"soak: RSS of {name} at the end", after[name] / 1024, "MB",
                              baseline=before[name] / 1024, baseline_name="after warm-up",
                              target="< 1.05x")
                 for name in pids]
        write_rows(args.json, rows)


if __name__ == "__main__":
    main()
