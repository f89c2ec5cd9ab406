"""The remote-engine path: what the whole chain adds over calling the OpenAI-compatible server.

    .venv/bin/python -m bench.bench_remote [--rounds 100] [--max-tokens 32] [--json PATH]

One run starts a real ``llama_cpp.server`` serving SmolLM2 (tests/support/llama_server.py), then
generation, router and gateway as real processes with that server as their only backend
(VLLM_URL, served as the catalog's ``mistral``; EMBEDDED_BACKEND=false). Each round sends the same
greedy streamed chat, in turn:

- directly to llama_cpp.server's ``/v1/chat/completions`` (SSE) — the baseline;
- through the gateway (``/v1/chat/completions`` SSE → router → llama_cpp.server: the router
  calls remote engines itself);
- through the router over gRPC (ChatStream → llama_cpp.server);
- to the generation service alone over gRPC (GenerateStream on backend vllm), the path direct
  internal callers take to a remote engine.

Both HTTP paths use the same httpx client. Latency is measured by the caller: time to the first
content and to the end of the stream. "Added" is the per-round difference to the direct call
(p50 and p99 over the rounds); tokens/s is the reply's completion tokens (the usage the chain
reports; llama_cpp.server streams one token per event) over the stream's duration, median over
the rounds. The cache is off, so every request reaches the engine. The
router probes the backend at start-up only (ROUTER_HEALTH_INTERVAL_S=3600): llama_cpp.server
answers /v1/models only between replies (one lock for everything), and on a busy machine a probe
queued behind back-to-back replies times out and marks the only backend down mid-run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import httpx

from bench.report import Row, add_json_argument, format_table, write_rows
from bench.support import start_stack
from tests.support.llama_server import LlamaServer
from upcoach_llm.api import (
    common_pb2,
    generation_pb2,
    generation_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from upcoach_llm.common.channels import authed
from upcoach_llm.dev.stack import Stack

PROMPT = "Give me three short tips for a better morning routine."
ALIAS = "smollm2"


@dataclass(frozen=True)
class Sample:
    """One streamed reply as the caller saw it."""

    ttft_s: float
    total_s: float
    tokens: int
    text: str

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.total_s if self.total_s > 0 else 0.0




def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def sse_sample(client: httpx.AsyncClient, url: str, body: dict) -> Sample:
    """Streams an OpenAI-shaped SSE chat and times it."""
    started = time.perf_counter()
    first = None
    parts: list[str] = []
    usage = None
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"{url}: {event['error']}")
            usage = event.get("usage") or usage
            for choice in event.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    first = first or time.perf_counter()
                    parts.append(text)
    end = time.perf_counter()
    tokens = (usage or {}).get("completion_tokens") or len(parts)
    return Sample((first or end) - started, end - started, tokens, "".join(parts))


async def grpc_sample(call: Callable[[], object]) -> Sample:
    """Streams a chat over gRPC (router ChatStream or generation GenerateStream) and times it."""
    started = time.perf_counter()
    first = None
    parts: list[str] = []
    tokens = 0
    async for chunk in call():
        if chunk.text:
            first = first or time.perf_counter()
            parts.append(chunk.text)
        tokens = chunk.usage.completion_tokens or tokens
    end = time.perf_counter()
    return Sample((first or end) - started, end - started, tokens or len(parts), "".join(parts))


def start_remote_stack(server: LlamaServer) -> Stack:
    env = {"VLLM_URL": f"{server.url}/v1", "VLLM_MODEL": ALIAS,
           "VLLM_CATALOG_MODEL": "mistral", "EMBEDDED_BACKEND": "false", "CACHE_MODE": "off",
           "RATE_LIMIT_RPM": "0", "ROUTER_HEALTH_INTERVAL_S": "3600",
           "ROUTER_PROBE_TIMEOUT_S": "30",
           "REDIS_KEY_PREFIX": f"upcoach:bench:{uuid.uuid4().hex[:8]}:"}
    for name in ("LLM_API_KEY", "OLLAMA_URL", "OLLAMA_PORT"):
        os.environ.pop(name, None)
    return start_stack(["generation", "router", "gateway"], env, label="remote", timeout=120)


async def measure(server: LlamaServer, stack: Stack, rounds: int, warmup: int,
                  max_tokens: int) -> dict[str, list[Sample]]:
    body = {"messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "max_tokens": max_tokens, "temperature": 0, "top_p": 1.0}
    paths: dict[str, Callable[[], Awaitable[Sample]]] = {}
    async with httpx.AsyncClient(timeout=120) as client, \
            grpc.aio.insecure_channel(stack.spec("router").address) as channel, \
            grpc.aio.insecure_channel(stack.spec("generation").address) as direct_channel:
        stub = authed(router_pb2_grpc.RouterServiceStub(channel), stack.auth)
        engine = authed(generation_pb2_grpc.GenerationServiceStub(direct_channel), stack.auth)
        paths["direct"] = lambda: sse_sample(client, f"{server.url}/v1/chat/completions",
                                             {**body, "model": ALIAS})
        if "gateway" in stack.processes:
            gateway = f"http://{stack.spec('gateway').address}/v1/chat/completions"
            paths["gateway"] = lambda: sse_sample(client, gateway, {
                **body, "model": "mistral", "stream_options": {"include_usage": True}})
        messages = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=PROMPT)]
        sampling = common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0, top_p=1.0)
        paths["router"] = lambda: grpc_sample(lambda: stub.ChatStream(router_pb2.ChatStreamRequest(
            model="mistral", messages=messages, sampling=sampling), timeout=120))
        paths["generation"] = lambda: grpc_sample(lambda: engine.GenerateStream(
            generation_pb2.GenerateStreamRequest(model="mistral", backend="vllm",
                                                 messages=messages, sampling=sampling),
            timeout=120))
        samples: dict[str, list[Sample]] = {name: [] for name in paths}
        for index in range(warmup + rounds):
            order = list(paths) if index % 2 == 0 else list(reversed(paths))
            took = {}
            for name in order:
                sample = await paths[name]()
                took[name] = f"{sample.ttft_s * 1000:.0f}/{sample.total_s * 1000:.0f} ms"
                if index >= warmup:
                    samples[name].append(sample)
            print(f"round {index + 1}/{warmup + rounds} (first token/whole): "
                  + ", ".join(f"{n} {t}" for n, t in took.items()), file=sys.stderr, flush=True)
    return samples


def rows_for(samples: dict[str, list[Sample]], max_tokens: int) -> list[Row]:
    direct = samples["direct"]
    rows: list[Row] = []
    texts = {s.text for group in samples.values() for s in group}
    if len(texts) != 1:
        print(f"warning: {len(texts)} different replies across paths and rounds "
              "(greedy decoding should give one)", file=sys.stderr)
    direct_ttft = statistics.median(s.ttft_s for s in direct) * 1000
    direct_rate = statistics.median(s.tokens_per_s for s in direct)
    for name in [n for n in ("gateway", "router", "generation") if n in samples]:
        chain = samples[name]
        label = {"gateway": "gateway SSE -> router",
                 "router": "router gRPC",
                 "generation": "generation gRPC alone"}[name]
        added_ttft = [(c.ttft_s - d.ttft_s) * 1000 for c, d in zip(chain, direct, strict=True)]
        added_total = [(c.total_s - d.total_s) * 1000 for c, d in zip(chain, direct, strict=True)]
        rows += [
            Row.measured(f"{label}: time to first token p50",
                         statistics.median(s.ttft_s for s in chain) * 1000, "ms",
                         baseline=direct_ttft, baseline_name="llama_cpp.server direct"),
            Row.measured(f"{label}: added to first token p50",
                         statistics.median(added_ttft), "ms", target="<= 2 ms"),
            Row.measured(f"{label}: added to first token p99",
                         percentile(added_ttft, 0.99), "ms"),
            Row.measured(f"{label}: added to whole reply p50",
                         statistics.median(added_total), "ms", target="<= 2 ms"),
            Row.measured(f"{label}: added to whole reply p99",
                         percentile(added_total, 0.99), "ms"),
            Row.measured(f"{label}: tokens/s ({max_tokens} tokens)",
                         statistics.median(s.tokens_per_s for s in chain), "tokens/s",
                         baseline=direct_rate, baseline_name="llama_cpp.server direct",
                         target=">= 0.95x"),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="llama_cpp.server threads (1: llama.cpp's threads spin at barriers, "
                             "and two of them on a busy 2-core machine slow to a crawl)")
    add_json_argument(parser)
    args = parser.parse_args()

    with LlamaServer(alias=ALIAS, n_threads=args.threads) as server:
        stack = start_remote_stack(server)
        try:
            samples = asyncio.run(measure(server, stack, args.rounds, args.warmup,
                                          args.max_tokens))
        finally:
            stack.stop()
    rows = rows_for(samples, args.max_tokens)
    print(f"{args.rounds} rounds, {args.max_tokens} tokens, greedy; paths: "
          f"{', '.join(samples)}; tokens per reply: {samples['direct'][0].tokens}")
    print(format_table({"remote engine (llama_cpp.server)": rows}))
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
