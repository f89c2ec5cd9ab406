"""Gateway overheads on loopback: cache hits, time added over the engine, embeddings throughput.

    .venv/bin/python -m bench.bench_gateway [--duration 8] [--rounds 25] [--max-tokens 4]
                                            [--connections 32] [--json PATH]

One run starts the whole stack (every service a real process, the gateway included, on free
ports; Redis on 127.0.0.1:6379 with a key prefix of its own) and measures, each figure next to its
baseline from the same run:

1. Cache hits: a greedy chat answered from the Redis cache. Latency at 1 connection and
   requests/s at ``--connections`` connections, with ``wrk`` when installed (else an asyncio
   keep-alive client, named in the output). The rate limit stays on (one Redis round trip per
   request, budget never reached). Baseline: GET /api/metrics, the cheapest endpoint (the same
   middleware stack, no cache lookup; being the operator's, it skips the key check and the rate
   limit, so the baseline lacks the hit's rate-limit round trip to Redis).
2. Time added by gateway + router over calling the generation service (the engine) directly:
   the same greedy ``--max-tokens`` chat sent in rotating order to GenerationService.Generate
   (gRPC), RouterService.Chat (gRPC) and POST /v1/chat/completions; and the same for streams,
   time to first token (GenerateStream, ChatStream, SSE). Each request carries a new seed so the
   gateway takes the real cache-miss path (lookup, generate, store) while greedy decoding keeps
   the reply the same. The engine's own time for each request (usage on gRPC, Server-Timing on
   REST, the server-timing comment in SSE) is subtracted from what the caller saw, so the time
   outside the engine is compared and the engine's run-to-run noise drops out; added time is
   p50 outside the engine via the gateway minus p50 outside the engine direct.
3. Embeddings: one sentence per request, raw ONNX engine in-process vs the embedding service
   over gRPC vs POST /v1/embeddings through the gateway; one request at a time (latency-bound)
   and ``--embed-concurrency`` at a time (throughput: the gateway's work overlaps the engine's).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from bench.report import Row, add_json_argument, format_table, write_rows
from bench.support import start_stack
from upcoach_llm.api import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from upcoach_llm.common.channels import authed
from upcoach_llm.dev.stack import Stack
from upcoach_llm.embedding.content import load_content
from upcoach_llm.engines.onnx_embedding_engine import (
    MODEL_NAME,
    OnnxEmbeddingEngine,
    OnnxEmbeddingSettings,
)

CHAT_MODEL = "smollm2-135m-instruct"
PROMPT = "Give me one short tip for a better morning routine."
CACHED_BODY = {"model": "mistral", "messages": [{"role": "user", "content": PROMPT}],
               "max_tokens": 16, "temperature": 0}




def start_gateway_stack(prefix: str, engine_threads: int | None) -> Stack:
    env = {"RATE_LIMIT_RPM": "1000000000", "REDIS_KEY_PREFIX": prefix,
           "ROUTER_HEALTH_INTERVAL_S": "1"}
    if engine_threads:
        # the raw in-process engine below reads the same variables
        os.environ["LLAMA_N_THREADS"] = os.environ["EMBEDDING_THREADS"] = str(engine_threads)
    return start_stack(env=env, label="gateway")


# --- a tiny keep-alive HTTP/1.1 client (less client overhead than httpx) -----------------------

class Http:
    """One persistent connection to the gateway."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)

    def post(self, path: str, body: dict, headers: dict[str, str] | None = None
             ) -> http.client.HTTPResponse:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            self.conn.request("POST", path, data, headers)
            return self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()  # the server closed an idle keep-alive connection: reconnect
            self.conn.request("POST", path, data, headers)
            return self.conn.getresponse()

    def post_json(self, path: str, body: dict) -> tuple[dict, dict[str, str]]:
        reply = self.post(path, body)
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"POST {path}: {reply.status} {data[:300]!r}")
        return json.loads(data), {k.lower(): v for k, v in reply.getheaders()}

    def get_json(self, path: str) -> dict:
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())

    def close(self) -> None:
        self.conn.close()


# --- 1. cache hits ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    """What a load generator saw."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, connections: int, duration: float, body: dict | None) -> Load:
    script = None
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = {json.dumps(json.dumps(body))}\n")
        script.close()
        args += ["-s", script.name]
    try:
        out = subprocess.run([*args, url], capture_output=True, text=True, check=True,
                             timeout=duration + 30).stdout
    finally:
        if script is not None:
            os.unlink(script.name)

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        return float(match.group(1)) * _UNITS[match.group(2)]

    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                latency("50"), latency("99"), total, int(errors.group(1)) if errors else 0)


async def _python_load(address: str, connections: int, duration: float,
                       body: dict | None, path: str) -> Load:
    host, port = address.rsplit(":", 1)
    if body is None:
        raw = f"GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n".encode()
    else:
        payload = json.dumps(body).encode()
        raw = (f"POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not head.startswith(b"HTTP/1.1 2")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Load(len(latencies) / elapsed, latencies[len(latencies) // 2],
                latencies[int(len(latencies) * 0.99)], len(latencies), errors)


def load(address: str, path: str, connections: int, duration: float,
         body: dict | None) -> Load:
    if shutil.which("wrk"):
        return wrk(f"http://{address}{path}", connections, duration, body)
    return asyncio.run(_python_load(address, connections, duration, body, path))


def bench_cache(address: str, connections: int, duration: float) -> list[Row]:
    client = Http(address)
    try:
        first = client.post_json("/v1/chat/completions", CACHED_BODY)[1]["x-cache"]
        second = client.post_json("/v1/chat/completions", CACHED_BODY)[1]["x-cache"]
        assert (first, second) == ("MISS", "HIT") or first == "HIT", (first, second)
        before = client.get_json("/api/metrics")["cache_hits"]
    finally:
        client.close()
    tool = "wrk" if shutil.which("wrk") else "asyncio client (wrk not installed)"
    print(f"cache hits: load generator {tool}, {duration:g}s per run", flush=True)
    runs = {}
    for name, path, body in (("hit", "/v1/chat/completions", CACHED_BODY),
                             ("floor", "/api/metrics", None)):
        for conns in (1, connections):
            runs[name, conns] = load(address, path, conns, duration, body)
            run = runs[name, conns]
            print(f"  {name:>5} c={conns:<3} {run.requests_per_s:8,.0f} req/s  "
                  f"p50 {run.p50_ms:6.3f} ms  p99 {run.p99_ms:6.3f} ms  "
                  f"({run.requests} requests, {run.errors} errors)", flush=True)
    client = Http(address)
    try:
        hits = client.get_json("/api/metrics")["cache_hits"] - before
    finally:
        client.close()
    sent = runs["hit", 1].requests + runs["hit", connections].requests
    print(f"  {hits} of {sent} chat requests were cache hits", flush=True)
    if hits < sent or runs["hit", 1].errors or runs["hit", connections].errors:
        raise RuntimeError("cache-hit runs had misses or errors")
    floor = "GET /api/metrics (no rate limit, no cache)"
    return [
        Row.measured("cache hit latency p50, 1 connection", runs["hit", 1].p50_ms, "ms",
                     baseline=runs["floor", 1].p50_ms, baseline_name=floor, target="<= 1 ms"),
        Row.measured("cache hit latency p99, 1 connection", runs["hit", 1].p99_ms, "ms",
                     baseline=runs["floor", 1].p99_ms, baseline_name=floor),
        Row.measured(f"cache hits, {connections} connections",
                     runs["hit", connections].requests_per_s, "req/s",
                     baseline=runs["floor", connections].requests_per_s, baseline_name=floor,
                     target=">= 2,000 req/s"),
        Row.measured(f"cache hit latency p50, {connections} connections",
                     runs["hit", connections].p50_ms, "ms",
                     baseline=runs["floor", connections].p50_ms, baseline_name=floor),
    ]


# --- 2. time added over the engine ----------------------------------------------------------

def _messages() -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=PROMPT)]


def _sampling(max_tokens: int, seed: int) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0, seed=seed)


@dataclass(frozen=True)
class Timing:
    """What the caller saw, and what the engine says it spent (both in ms)."""

    seen_ms: float
    engine_ms: float

    @property
    def outside_ms(self) -> float:
        """Time spent outside the engine: sockets, services, gateway."""
        return self.seen_ms - self.engine_ms


_SERVER_TIMING = re.compile(r"(engine|ttft);dur=([\d.]+)")


def _server_timing(value: str) -> dict[str, float]:
    return {name: float(ms) for name, ms in _SERVER_TIMING.findall(value)}


def whole_grpc(call: Callable[[], object]) -> Timing:
    started = time.perf_counter()
    reply = call()
    seen = (time.perf_counter() - started) * 1000
    return Timing(seen, reply.usage.generation_ms)  # type: ignore[attr-defined]


def whole_rest(client: Http, body: dict) -> Timing:
    started = time.perf_counter()
    reply = client.post("/v1/chat/completions", body)
    reply.read()
    seen = (time.perf_counter() - started) * 1000
    assert reply.status == 200, reply.status
    return Timing(seen, _server_timing(reply.getheader("server-timing", ""))["engine"])


def first_grpc(stream_factory: Callable[[], object]) -> Timing:
    """Time to the first message with text; the engine's own TTFT comes with the last one."""
    started = time.perf_counter()
    first = None
    engine = None
    for message in stream_factory():  # type: ignore[attr-defined]
        if first is None and message.text:
            first = (time.perf_counter() - started) * 1000
        if message.HasField("usage"):
            engine = message.usage.time_to_first_token_ms
    assert first is not None and engine is not None
    return Timing(first, engine)


def first_sse(client: Http, body: dict) -> Timing:
    """Time to the first content chunk; the engine's TTFT comes in the server-timing comment."""
    started = time.perf_counter()
    reply = client.post("/v1/chat/completions", body)
    assert reply.status == 200, reply.read()
    first = None
    engine = None
    while line := reply.readline():
        if first is None and line.startswith(b"data: {") and b'"delta":{"content":"' in line:
            first = (time.perf_counter() - started) * 1000
        if line.startswith(b": server-timing"):
            engine = _server_timing(line.decode())["ttft"]
    reply.read()
    assert first is not None and engine is not None
    return Timing(first, engine)


def _round(generation: generation_pb2_grpc.GenerationServiceStub,
           router: router_pb2_grpc.RouterServiceStub, client: Http, max_tokens: int,
           seed: int, order: int) -> tuple[list[Timing], list[Timing]]:
    """One whole reply and one stream on each path, the paths in a rotating order so that
    none always runs first: ([generation, router, gateway] whole, [...] first token)."""
    sampling = _sampling(max_tokens, seed)
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens, "temperature": 0, "seed": seed}
    whole_calls = [
        lambda: whole_grpc(lambda: generation.Generate(generation_pb2.GenerateRequest(
            model=CHAT_MODEL, messages=_messages(), sampling=sampling), timeout=60)),
        lambda: whole_grpc(lambda: router.Chat(router_pb2.ChatRequest(
            model=CHAT_MODEL, messages=_messages(), sampling=sampling), timeout=60)),
        lambda: whole_rest(client, body),
    ]
    stream_sampling = _sampling(max_tokens, seed + 1)
    stream_body = {**body, "seed": seed + 1, "stream": True}
    first_calls = [
        lambda: first_grpc(lambda: generation.GenerateStream(
            generation_pb2.GenerateStreamRequest(model=CHAT_MODEL, messages=_messages(),
                                                 sampling=stream_sampling), timeout=60)),
        lambda: first_grpc(lambda: router.ChatStream(router_pb2.ChatStreamRequest(
            model=CHAT_MODEL, messages=_messages(), sampling=stream_sampling), timeout=60)),
        lambda: first_sse(client, stream_body),
    ]
    results = []
    for calls in (whole_calls, first_calls):
        times: list[Timing | None] = [None, None, None]
        for step in range(3):
            path = (order + step) % 3
            times[path] = calls[path]()
        results.append(times)
    return results[0], results[1]  # type: ignore[return-value]


@dataclass
class Paths:
    """Timings per path: the generation service direct, the router direct, the gateway."""

    generation: list[Timing]
    router: list[Timing]
    gateway: list[Timing]

    @staticmethod
    def seen(timings: list[Timing]) -> float:
        return statistics.median(t.seen_ms for t in timings)

    @staticmethod
    def outside(timings: list[Timing]) -> float:
        return statistics.median(t.outside_ms for t in timings)

    def added(self, base: list[Timing], path: list[Timing]) -> float:
        """Extra time outside the engine on ``path`` over ``base`` (p50 against p50)."""
        return self.outside(path) - self.outside(base)


def bench_added(stack: Stack, rounds: int, max_tokens: int) -> list[Row]:
    generation = stack.stub("generation", generation_pb2_grpc.GenerationServiceStub)
    router = stack.stub("router", router_pb2_grpc.RouterServiceStub)
    client = Http(stack.spec("gateway").address)
    whole = Paths([], [], [])
    first = Paths([], [], [])
    seed = int(time.time())
    try:
        for index in range(rounds + 2):
            seed += 2
            times = _round(generation, router, client, max_tokens, seed, index)
            if index >= 2:  # the first rounds warm every path up
                for paths, values in zip((whole, first), times, strict=True):
                    paths.generation.append(values[0])
                    paths.router.append(values[1])
                    paths.gateway.append(values[2])
    finally:
        client.close()
    print(f"\nadded time: {rounds} rounds, {max_tokens} greedy tokens, model {CHAT_MODEL}; "
          "p50 as seen by the caller / outside the engine (seen minus the engine's own time)")
    for label, paths in (("whole reply", whole), ("first token", first)):
        print(f"  {label:<12}" + "  ".join(
            f"{name} {paths.seen(t):7.2f} / {paths.outside(t):5.2f} ms"
            for name, t in (("generation", paths.generation), ("router", paths.router),
                            ("gateway", paths.gateway))), flush=True)
    return [*_added_rows(f"whole reply ({max_tokens} tokens) via gateway + router", whole,
                         "<= 2 ms p50"),
            *_added_rows("time to first token via gateway + router (SSE)", first, "<= 2 ms")]


def _added_rows(title: str, paths: Paths, target: str) -> list[Row]:
    direct = "generation service direct (gRPC)"
    return [
        Row.measured(f"{title}, p50 seen", Paths.seen(paths.gateway), "ms",
                     baseline=Paths.seen(paths.generation), baseline_name=direct),
        Row.measured("  of it outside the engine, p50", Paths.outside(paths.gateway), "ms",
                     baseline=Paths.outside(paths.generation), baseline_name=direct),
        Row.measured("  added by gateway + router", paths.added(paths.generation, paths.gateway),
                     "ms", target=target),
        Row.measured("  added by the router alone", paths.added(paths.generation, paths.router),
                     "ms"),
    ]


# --- 3. embeddings ------------------------------------------------------------------------------

def sentences(count: int) -> list[str]:
    pieces = [s.strip() for item in load_content()
              for s in re.split(r"(?<=[.!?])\s+", item.text) if len(s.split()) >= 4]
    return [pieces[i % len(pieces)] for i in range(count)]


class AsyncHttp:
    """One keep-alive HTTP/1.1 connection for asyncio workers (POST JSON, read the reply)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, payload: bytes) -> bytes:
        if self._streams is None:
            host, port = self.address.rsplit(":", 1)
            self._streams = await asyncio.open_connection(host, int(port))
        reader, writer = self._streams
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.address}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                     "\r\n".encode() + payload)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        body = await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"POST {path}: {head.splitlines()[0]!r} {body[:200]!r}")
        return body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


async def _rate(texts: list[str], concurrency: int,
                make_worker: Callable[[], Callable[[str], Awaitable[object]]]) -> float:
    """Requests per second with ``concurrency`` workers sharing the texts."""
    queue = list(reversed(texts))
    workers = [make_worker() for _ in range(concurrency)]

    async def run(call: Callable[[str], Awaitable[object]]) -> None:
        while queue:
            await call(queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(run(w) for w in workers))
    return len(texts) / (time.perf_counter() - started)


async def _bench_embeddings(stack: Stack, rounds: int, texts: list[str],
                            levels: list[int]) -> dict[str, dict[int, list[float]]]:
    engine = OnnxEmbeddingEngine(OnnxEmbeddingSettings.from_env())
    await engine.load()
    channel = grpc.aio.insecure_channel(stack.spec("embedding").address)
    stub = authed(embedding_pb2_grpc.EmbeddingServiceStub(channel), stack.auth)
    clients: list[AsyncHttp] = []

    def engine_worker() -> Callable[[str], Awaitable[object]]:
        return lambda text: engine.embed(MODEL_NAME, [text])

    def service_worker() -> Callable[[str], Awaitable[object]]:
        return lambda text: stub.Embed(embedding_pb2.EmbedRequest(model=MODEL_NAME,
                                                                  texts=[text]), timeout=30)

    def gateway_worker() -> Callable[[str], Awaitable[object]]:
        client = AsyncHttp(stack.spec("gateway").address)
        clients.append(client)
        return lambda text: client.post("/v1/embeddings", json.dumps(
            {"input": text, "model": MODEL_NAME}).encode())

    paths = {"engine": engine_worker, "service": service_worker, "gateway": gateway_worker}
    rates: dict[str, dict[int, list[float]]] = {p: {n: [] for n in levels} for p in paths}
    try:
        for factory in paths.values():
            await _rate(texts[:10], 1, factory)
        for _ in range(rounds):
            for level in levels:
                for name, factory in paths.items():
                    rates[name][level].append(await _rate(texts, level, factory))
    finally:
        for client in clients:
            client.close()
        await channel.close()
        await engine.close()
    return rates


def bench_embeddings(stack: Stack, rounds: int, count: int, concurrency: int) -> list[Row]:
    texts = sentences(count)
    levels = sorted({1, concurrency})
    rates = asyncio.run(_bench_embeddings(stack, rounds, texts, levels))
    med = statistics.median
    print(f"\nembeddings: {count} sentences x {rounds} rounds, one sentence per request")
    for level in levels:
        print(f"  {level} at a time: " + ", ".join(
            f"{name} {med(by_level[level]):,.0f} req/s" for name, by_level in rates.items()),
              flush=True)
    engine_name = "raw ONNX engine in-process"
    rows = []
    for level in levels:
        label = "sequential" if level == 1 else f"{level} concurrent"
        rows += [
            Row.measured(f"embeddings via gateway, {label}", med(rates["gateway"][level]),
                         "req/s", baseline=med(rates["engine"][level]),
                         baseline_name=engine_name, target=">= 0.80x the engine"),
            Row.measured(f"  embedding service direct (gRPC), {label}",
                         med(rates["service"][level]), "req/s",
                         baseline=med(rates["engine"][level]), baseline_name=engine_name),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Gateway overheads on loopback, each next to its same-run baseline: cache-hit "
                    "latency and req/s, time added by gateway + router over the generation "
                    "service (whole reply and time to first token), embeddings req/s through "
                    "the gateway vs the raw ONNX engine. Starts the whole stack itself.")
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds per cache-hit load run (default: 8)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent connections for the cache-hit throughput (default: 32)")
    parser.add_argument("--rounds", type=int, default=25,
                        help="rounds for the added-time and embedding figures (default: 25)")
    parser.add_argument("--max-tokens", type=int, default=4,
                        help="greedy tokens per chat in the added-time runs (default: 4)")
    parser.add_argument("--sentences", type=int, default=100,
                        help="sentences per embeddings round (default: 100)")
    parser.add_argument("--embed-concurrency", type=int, default=4,
                        help="concurrent requests for the second embeddings figure (default: 4)")
    parser.add_argument("--engine-threads", type=int, default=None,
                        help="LLAMA_N_THREADS and EMBEDDING_THREADS for the engines, the raw one "
                             "included (default: the engines' own, every CPU)")
    parser.add_argument("--only", default="cache,added,embeddings",
                        help="comma-separated parts to run (default: all three)")
    add_json_argument(parser)
    args = parser.parse_args()
    parts = {p.strip() for p in args.only.split(",")}

    threads = args.engine_threads or "auto (every CPU)"
    print(f"{os.cpu_count()} CPUs, loopback, engine threads {threads}; starting the stack...",
          flush=True)
    prefix = f"upcoach:bench:{uuid.uuid4().hex[:8]}:"
    stack = start_gateway_stack(prefix, args.engine_threads)
    rows: list[Row] = []
    try:
        if "cache" in parts:
            rows += bench_cache(stack.spec("gateway").address, args.connections, args.duration)
        if "added" in parts:
            rows += bench_added(stack, args.rounds, args.max_tokens)
        if "embeddings" in parts:
            rows += bench_embeddings(stack, max(3, args.rounds // 5), args.sentences,
                                     args.embed_concurrency)
    finally:
        stack.stop()
        _forget(prefix)
    print("\n" + format_table({"gateway": rows}))
    write_rows(args.json, rows)


def _forget(prefix: str) -> None:
    import redis

    client = redis.Redis()
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    main()
