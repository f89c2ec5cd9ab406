"""Embedding throughput: the raw ONNX engine in-process vs the embedding service as a real process.

    .venv/bin/python -m bench.bench_embedding [--batch-sizes 1,32] [--sentences 256] [--rounds 3]

Both sides run the same model with the same settings (EMBEDDING_THREADS, EMBEDDING_BATCH_SIZE
from the environment), in the same run, alternating within each round, on sentences from the shipped
coaching corpus. The service is started with ``python -m upcoach_llm.embedding`` on a free port and
called over gRPC like any client, so its column includes protobuf, the socket and the servicer.
Each figure is the median of the rounds; the ratio is service / engine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from dataclasses import dataclass

import grpc

from bench.report import Row, add_json_argument, write_rows
from bench.support import start_stack
from upcoach_llm.api import embedding_pb2, embedding_pb2_grpc
from upcoach_llm.common.channels import authed
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.embedding.content import load_content
from upcoach_llm.engines.onnx_embedding_engine import (
    MODEL_NAME,
    OnnxEmbeddingEngine,
    OnnxEmbeddingSettings,
)


@dataclass(frozen=True)
class Measure:
    """Sentences per second and milliseconds per call, medians over the rounds."""

    sentences_per_s: float
    ms_per_call: float


def corpus_sentences(count: int) -> list[str]:
    """``count`` real sentences cut from the coaching corpus, repeated as needed."""
    pieces = [s.strip() for item in load_content()
              for s in re.split(r"(?<=[.!?])\s+", item.text) if len(s.split()) >= 4]
    return [pieces[i % len(pieces)] for i in range(count)]


def batches(sentences: list[str], size: int) -> list[list[str]]:
    return [sentences[i:i + size] for i in range(0, len(sentences), size)]


def summarise(samples: list[tuple[float, int, int]]) -> Measure:
    """samples: (seconds, sentences, calls) per round."""
    rates = [n / s for s, n, _ in samples]
    latencies = [s * 1000 / calls for s, _, calls in samples]
    return Measure(statistics.median(rates), statistics.median(latencies))


async def time_engine(engine: OnnxEmbeddingEngine, work: list[list[str]]) -> float:
    started = time.perf_counter()
    for batch in work:
        await engine.embed(MODEL_NAME, batch)
    return time.perf_counter() - started


def time_service(stub: embedding_pb2_grpc.EmbeddingServiceStub,
                 work: list[embedding_pb2.EmbedRequest]) -> float:
    started = time.perf_counter()
    for request in work:
        stub.Embed(request, timeout=60)
    return time.perf_counter() - started


async def bench(address: str, auth: InternalAuth, sentences: list[str], sizes: list[int],
                rounds: int) -> tuple[dict[int, Measure], dict[int, Measure]]:
    """Alternates engine and service within each round, so load drifts hit both alike."""
    engine = OnnxEmbeddingEngine(OnnxEmbeddingSettings.from_env())
    await engine.load()
    raw: dict[int, list] = {size: [] for size in sizes}
    rpc: dict[int, list] = {size: [] for size in sizes}
    try:
        with grpc.insecure_channel(address) as channel:
            stub = authed(embedding_pb2_grpc.EmbeddingServiceStub(channel), auth)
            stub.Embed(embedding_pb2.EmbedRequest(texts=["warm-up"]), timeout=30)
            for _ in range(rounds):
                for size in sizes:
                    work = batches(sentences, size)
                    requests = [embedding_pb2.EmbedRequest(texts=batch) for batch in work]
                    raw[size].append((await time_engine(engine, work), len(sentences), len(work)))
                    rpc[size].append((time_service(stub, requests), len(sentences), len(work)))
    finally:
        await engine.close()
    return ({s: summarise(v) for s, v in raw.items()}, {s: summarise(v) for s, v in rpc.items()})




def print_table(engine: dict[int, Measure], service: dict[int, Measure]) -> None:
    header = (f"{'batch':>5} | {'engine sent/s':>13} | {'gRPC sent/s':>11} | "
              f"{'gRPC/engine':>11} | {'engine ms/call':>14} | {'gRPC ms/call':>12}")
    print(header)
    print("-" * len(header))
    for size, raw in engine.items():
        rpc = service[size]
        print(f"{size:>5} | {raw.sentences_per_s:>13,.0f} | {rpc.sentences_per_s:>11,.0f} | "
              f"{rpc.sentences_per_s / raw.sentences_per_s:>11.2f} | "
              f"{raw.ms_per_call:>14.2f} | {rpc.ms_per_call:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Embedding throughput of the raw ONNX engine vs the embedding service over "
                    "gRPC (a real process), same run, same settings. EMBEDDING_THREADS and "
                    "EMBEDDING_BATCH_SIZE apply to both.")
    parser.add_argument("--batch-sizes", default="1,32",
                        help="comma-separated request sizes in sentences (default: 1,32)")
    parser.add_argument("--sentences", type=int, default=256,
                        help="sentences embedded per round and batch size (default: 256)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per measurement; the median is shown (default: 3)")
    add_json_argument(parser)
    args = parser.parse_args()
    sizes = [int(part) for part in args.batch_sizes.split(",") if part.strip()]
    sentences = corpus_sentences(args.sentences)

    print(f"{len(sentences)} corpus sentences per round, {args.rounds} rounds, "
          f"EMBEDDING_THREADS={os.environ.get('EMBEDDING_THREADS', '0 (auto)')}, "
          f"{os.cpu_count()} CPUs\n")
    stack = start_stack(["embedding"], label="embedding", timeout=120)
    try:
        engine, service = asyncio.run(
            bench(stack.spec("embedding").address, stack.auth, sentences, sizes, args.rounds))
    finally:
        stack.stop()
    print_table(engine, service)
    if args.json:
        write_rows(args.json, [
            Row.measured(f"embedding service over gRPC, batches of {size}",
                         service[size].sentences_per_s, "sentences/s",
                         baseline=engine[size].sentences_per_s,
                         baseline_name="raw ONNX engine in-process", target="report")
            for size in sizes])


if __name__ == "__main__":
    main()
