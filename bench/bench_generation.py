"""Chat generation speed: raw llama-cpp-python in-process vs the generation (and router) services.

    .venv/bin/python -m bench.bench_generation [--max-tokens 128] [--rounds 3] [--streams 4]

One run measures, on the same model (the embedded SmolLM2 GGUF), the same settings (n_ctx,
threads), the same prompt and greedy decoding, alternating within each round:

- raw ``Llama.generate``: the bare token loop the engine itself runs (the strict baseline);
- raw ``create_chat_completion(stream=True)``: llama-cpp-python's own chat API, for reference;
- the generation service, a real ``python -m upcoach_llm.generation`` process, over gRPC;
- the router, a real ``python -m upcoach_llm.router`` process in front of it (ChatStream), when
  upcoach_llm/router exists;

then the aggregate tokens/s and TTFT of ``--streams`` concurrent gRPC streams, next to one stream,
on generation processes started with each GENERATION_BATCHED in ``--batched``, each
GENERATION_PARALLEL in ``--parallel`` and each GENERATION_PREFIX_CACHE in ``--prefix-cache``
(``--concurrent-only`` skips the single-stream table), for each kind of prompts in ``--prompts``:

- ``same``: the streams that start together send one prompt (the story request above);
- ``distinct``: they share a system prompt (coaching.yaml's, as the router adds it) and each
  sends its own user message, as concurrent users of one coaching feature do.

Every call's prompt differs from every earlier call's (the user message is numbered), so the
engine's prefix cache can only reuse what the prompts truly share, never a whole earlier prompt.
The single-stream table runs the services with GENERATION_PREFIX_CACHE off: like the raw runs,
which reset the context first, they evaluate the whole prompt.
Every figure is the median over the rounds (each round starts one path later than the last);
TTFT is measured by the caller, from sending the
request to the first text. "CPU ms/token" is the CPU time of whoever generates (this process for
the raw paths; the generation process, plus the router's for the router path) per token: on a
shared machine it shows the services' own overhead better than wall-clock rates do, most of
all with --threads 1 (llama.cpp's threads spin while they wait for each other).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import itertools
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from bench.report import Row as ReportRow
from bench.report import add_json_argument, write_rows
from bench.support import start_stack
from upcoach_llm.api import (
    common_pb2,
    generation_pb2,
    generation_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from upcoach_llm.common.channels import authed
from upcoach_llm.common.config import load_config_file
from upcoach_llm.common.features import CoachingFile
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.engines.llama_cpp_settings import LlamaSettings
from upcoach_llm.engines.llama_loader import open_llama

MODEL = "smollm2-135m-instruct"
PROMPT = ("Write a long, detailed story about a habit coach who helps a runner train for her "
          "first marathon, week by week.")
# The user messages of ``--prompts distinct``: each stream of a group takes the next one.
SUBJECTS = ("a runner train for her first marathon", "a nurse keep a sleep routine on night "
            "shifts", "a student read for twenty minutes every day", "a father cook dinner at "
            "home more often", "a designer stretch after long days at the desk", "a retiree "
            "learn to swim", "a manager stop checking email at night", "a teenager practise "
            "the guitar daily")


class Prompts:
    """The messages of each group of calls that start together, never repeating a prompt."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0
        self.system = load_config_file(CoachingFile, "coaching.yaml").system_prompt("habits")

    def group(self, streams: int) -> list[list[common_pb2.ChatMessage]]:
        if self.kind == "same":
            self.calls += 1
            one = [common_pb2.ChatMessage(role=common_pb2.ROLE_USER,
                                          content=f"Story {self.calls}. {PROMPT}")]
            return [one] * streams
        group = []
        for _ in range(streams):
            self.calls += 1
            subject = SUBJECTS[self.calls % len(SUBJECTS)]
            group.append([common_pb2.ChatMessage(role=common_pb2.ROLE_SYSTEM,
                                                 content=self.system),
                          common_pb2.ChatMessage(
                              role=common_pb2.ROLE_USER,
                              content=f"Story {self.calls}: a habit coach helps {subject}. "
                                      "Write it week by week, in detail.")])
        return group


@dataclass(frozen=True)
class Sample:
    """One generation as the caller saw it."""

    ttft_s: float
    total_s: float
    tokens: int
    cpu_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.total_s

    @property
    def decode_tokens_per_s(self) -> float:
        return (self.tokens - 1) / (self.total_s - self.ttft_s)


@dataclass(frozen=True)
class Row:
    """Medians over the rounds for one path."""

    name: str
    ttft_ms: float
    tokens_per_s: float
    decode_tokens_per_s: float
    tokens: int
    cpu_ms_per_token: float


def summarise(name: str, samples: list[Sample]) -> Row:
    return Row(name, statistics.median(s.ttft_s * 1000 for s in samples),
               statistics.median(s.tokens_per_s for s in samples),
               statistics.median(s.decode_tokens_per_s for s in samples),
               min(s.tokens for s in samples),
               statistics.median(s.cpu_s * 1000 / s.tokens for s in samples))


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of the given processes (this one when empty)."""
    if not pids:
        return time.process_time()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def with_cpu(measure: Callable[[], Awaitable[Sample]], pids: list[int]) -> Sample:
    before = process_cpu_s(pids)
    sample = await measure()
    return dataclasses.replace(sample, cpu_s=process_cpu_s(pids) - before)


class Raw:
    """llama-cpp-python driven directly, with the engine's loader and settings."""

    def __init__(self, settings: LlamaSettings) -> None:
        self.llama = open_llama(settings)
        template = self.llama.metadata["tokenizer.chat_template"]
        eos = self.llama.detokenize([self.llama.token_eos()], special=True).decode()
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token="")
        self.vocab = llama_cpp.llama_model_get_vocab(self.llama.model)

    def generate(self, messages: list[dict], max_tokens: int) -> Sample:
        started = time.perf_counter()
        self.llama.reset()
        prompt = self.llama.tokenize(self.formatter(messages=messages).prompt.encode(),
                                     add_bos=False, special=True)
        first = None
        count = 0
        tokens = self.llama.generate(prompt, temp=0.0, top_p=1.0, repeat_penalty=1.0)
        for token in tokens:
            if llama_cpp.llama_vocab_is_eog(self.vocab, token):
                break
            self.llama.detokenize([token])
            count += 1
            first = first or time.perf_counter()
            if count >= max_tokens:
                break
        tokens.close()
        return Sample((first or time.perf_counter()) - started,
                      time.perf_counter() - started, count)

    def chat_completion(self, messages: list[dict], max_tokens: int) -> Sample:
        started = time.perf_counter()
        self.llama.reset()
        first = None
        count = 0
        finish = None
        for chunk in self.llama.create_chat_completion(messages, max_tokens=max_tokens,
                                                       temperature=0.0, stream=True):
            choice = chunk["choices"][0]
            if choice["delta"].get("content"):
                count += 1
                first = first or time.perf_counter()
            finish = choice.get("finish_reason") or finish
        ended = time.perf_counter()
        return Sample((first or ended) - started, ended - started,
                      max_tokens if finish == "length" else count)


async def timed_stream(call: grpc.aio.UnaryStreamCall) -> Sample:
    started = time.perf_counter()
    first = None
    tokens = 0
    async for reply in call:
        if reply.text and first is None:
            first = time.perf_counter()
        if reply.HasField("usage"):
            tokens = reply.usage.completion_tokens
    ended = time.perf_counter()
    return Sample((first or ended) - started, ended - started, tokens)


def sampling(max_tokens: int) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0.0)


def numbered_prompt() -> str:
    """PROMPT with a number no earlier call had (of one width, so every path evaluates as many
    tokens): nothing kept per message, such as the router's crisis-check results, answers it."""
    return f"{PROMPT} (call {next(_CALLS):04d})"


_CALLS = itertools.count(1)




async def concurrent(address: str, auth: InternalAuth, streams: int, max_tokens: int,
                     prompts: Prompts) -> tuple[float, list[Sample]]:
    """Aggregate tokens/s of ``streams`` simultaneous GenerateStream calls (after one call)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = authed(generation_pb2_grpc.GenerationServiceStub(channel), auth)

        def request(messages: list[common_pb2.ChatMessage]) -> generation_pb2.GenerateStreamRequest:
            return generation_pb2.GenerateStreamRequest(model=MODEL, messages=messages,
                                                        sampling=sampling(max_tokens))

        await timed_stream(stub.GenerateStream(request(prompts.group(1)[0])))
        group = [request(messages) for messages in prompts.group(streams)]
        started = time.perf_counter()
        samples = await asyncio.gather(*(timed_stream(stub.GenerateStream(r)) for r in group))
        return sum(s.tokens for s in samples) / (time.perf_counter() - started), samples


def print_table(rows: list[Row], args: argparse.Namespace, prompt_tokens: int) -> None:
    base = rows[0]
    print(f"\nSingle stream: {MODEL}, prompt {prompt_tokens} tokens, {args.max_tokens} tokens "
          f"greedy, n_ctx {args.n_ctx}, {args.threads} threads, median of {args.rounds} rounds")
    print(f"{'path':<32}{'TTFT ms':>9}{'tok/s':>8}{'decode tok/s':>14}{'tokens':>8}"
          f"{'tok/s vs raw':>14}{'TTFT - raw ms':>15}{'CPU ms/token':>14}{'CPU vs raw':>12}")
    for row in rows:
        print(f"{row.name:<32}{row.ttft_ms:>9.1f}{row.tokens_per_s:>8.1f}"
              f"{row.decode_tokens_per_s:>14.1f}{row.tokens:>8}"
              f"{row.tokens_per_s / base.tokens_per_s:>13.1%}"
              f"{row.ttft_ms - base.ttft_ms:>+15.1f}{row.cpu_ms_per_token:>14.2f}"
              f"{row.cpu_ms_per_token / base.cpu_ms_per_token:>11.1%}")


async def run(args: argparse.Namespace) -> None:
    settings = dataclasses.replace(LlamaSettings.from_env(), n_ctx=args.n_ctx,
                                   n_threads=args.threads, parallel=1)
    env = {"LLAMA_N_CTX": str(args.n_ctx), "LLAMA_N_THREADS": str(args.threads),
           "GENERATION_PARALLEL": "1", "GENERATION_MODEL_PATH": str(settings.model_path),
           "GENERATION_PREFIX_CACHE": "false", "LOG_LEVEL": "warning"}
    report: list[ReportRow] = []
    if not args.concurrent_only:
        report = await single_stream(args, settings, env)
    report += await concurrent_table(args, env)
    if args.json:
        write_rows(args.json, report)


async def single_stream(args: argparse.Namespace, settings: LlamaSettings,
                        env: dict[str, str]) -> list[ReportRow]:
    """The single-stream table: raw llama-cpp-python next to the services."""
    with_router = (args.router
                   and importlib.util.find_spec("upcoach_llm.router.__main__") is not None)
    raw = Raw(settings)

    def messages() -> list[dict[str, str]]:
        return [{"role": "user", "content": numbered_prompt()}]

    def proto_messages() -> list[common_pb2.ChatMessage]:
        return [common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=numbered_prompt())]

    prompt_tokens = len(raw.llama.tokenize(raw.formatter(messages=messages()).prompt.encode(),
                                           add_bos=False, special=True))
    stack = start_stack(["generation", "router"] if with_router else ["generation"], env,
                        label="generation")
    paths: dict[str, tuple[Callable[[], Awaitable[Sample]], list[int]]] = {}
    server_pids = [stack.processes[name].pid for name in stack.processes]
    try:
        async with grpc.aio.insecure_channel(stack.spec("generation").address) as gen_channel, \
                grpc.aio.insecure_channel(stack.spec("router").address) as router_channel:
            gen = authed(generation_pb2_grpc.GenerationServiceStub(gen_channel), stack.auth)
            router = authed(router_pb2_grpc.RouterServiceStub(router_channel), stack.auth)
            def gen_request() -> generation_pb2.GenerateStreamRequest:
                return generation_pb2.GenerateStreamRequest(
                    model=MODEL, messages=proto_messages(), sampling=sampling(args.max_tokens))

            def router_request() -> router_pb2.ChatStreamRequest:
                return router_pb2.ChatStreamRequest(
                    model=MODEL, messages=proto_messages(), sampling=sampling(args.max_tokens))

            async def raw_generate() -> Sample:
                return raw.generate(messages(), args.max_tokens)

            async def raw_chat() -> Sample:
                return raw.chat_completion(messages(), args.max_tokens)

            paths["raw Llama.generate"] = (raw_generate, [])
            paths["raw create_chat_completion"] = (raw_chat, [])
            paths["generation gRPC GenerateStream"] = (lambda: timed_stream(
                gen.GenerateStream(gen_request())), [stack.processes["generation"].pid])
            if with_router:
                paths["router gRPC ChatStream"] = (lambda: timed_stream(
                    router.ChatStream(router_request())), server_pids)
            for measure, _ in paths.values():
                await measure()
            samples: dict[str, list[Sample]] = {name: [] for name in paths}
            names = list(paths)
            for round_number in range(args.rounds):
                # Each round starts one path later, so none always follows the same other.
                for name in names[round_number % len(names):] + names[:round_number % len(names)]:
                    measure, pids = paths[name]
                    samples[name].append(await with_cpu(measure, pids))
    finally:
        stack.stop()
    raw.llama.close()
    single = [summarise(name, s) for name, s in samples.items()]
    print_table(single, args, prompt_tokens)
    report = report_rows(single)
    if not with_router:
        print("(no router column: upcoach_llm/router is missing or --no-router was given)")

    return report


async def concurrent_table(args: argparse.Namespace, env: dict[str, str]) -> list[ReportRow]:
    """1 stream, then ``--streams`` at once, on each GENERATION_BATCHED x GENERATION_PARALLEL."""
    print(f"\nConcurrent: 1 then {args.streams} GenerateStream calls at once, {args.max_tokens} "
          f"tokens each, median of {args.rounds} rounds; unbatched, the {args.threads} threads "
          "are shared out among the llama contexts")
    print(f"{'batched':<9}{'parallel':>9}{'prefix':>7}{'threads':>8}{'prompts':>9}{'1 tok/s':>9}"
          f"{'N tok/s':>9}{'gain':>7}{'1 TTFT ms':>11}{'N mean TTFT':>13}{'N max TTFT':>12}"
          f"{'TTFT ratio':>12}")
    report = []
    configs = [(batched, parallel, prefix) for batched in args.batched
               for parallel in args.parallel for prefix in (args.prefix_cache if batched
                                                            else [False])]
    for batched, parallel, prefix in configs:
        threads = args.threads if batched else max(1, args.threads // parallel)
        stack = start_stack(["generation"], label="generation", env={
            **env, "GENERATION_PARALLEL": str(parallel), "LLAMA_N_THREADS": str(threads),
            "GENERATION_BATCHED": str(batched).lower(),
            "GENERATION_PREFIX_CACHE": str(prefix).lower()})
        try:
            address = stack.spec("generation").address
            for kind in args.prompts:
                prompts = Prompts(kind)
                one: list[tuple[float, list[Sample]]] = []
                many: list[tuple[float, list[Sample]]] = []
                for _ in range(args.rounds):
                    one.append(await concurrent(address, stack.auth, 1, args.max_tokens,
                                                prompts))
                    many.append(await concurrent(address, stack.auth, args.streams,
                                                 args.max_tokens, prompts))
                report += concurrent_rows(args, (batched, parallel, prefix, threads, kind),
                                          one, many)
        finally:
            stack.stop()
    return report


def concurrent_rows(args: argparse.Namespace, config: tuple[bool, int, bool, int, str],
                    one: list[tuple[float, list[Sample]]],
                    many: list[tuple[float, list[Sample]]]) -> list[ReportRow]:
    """Prints one line of the concurrent table; its make-bench rows."""
    batched, parallel, prefix, threads, kind = config
    rate1 = statistics.median(rate for rate, _ in one)
    rate_n = statistics.median(rate for rate, _ in many)
    ttft1 = statistics.median(s[0].ttft_s * 1000 for _, s in one)
    mean_n = statistics.median(statistics.mean(x.ttft_s * 1000 for x in s) for _, s in many)
    max_n = statistics.median(max(x.ttft_s * 1000 for x in s) for _, s in many)
    print(f"{batched!s:<9}{parallel:>9}{prefix!s:>7}{threads:>8}{kind:>9}{rate1:>9.1f}"
          f"{rate_n:>9.1f}{rate_n / rate1:>6.2f}x{ttft1:>11.1f}{mean_n:>13.1f}{max_n:>12.1f}"
          f"{mean_n / ttft1:>11.2f}x")
    where = (f"{args.streams} streams, {kind} prompts, GENERATION_PARALLEL={parallel}, "
             f"GENERATION_BATCHED={str(batched).lower()}, "
             f"GENERATION_PREFIX_CACHE={str(prefix).lower()}")
    return [ReportRow.measured(f"generation: aggregate tokens/s, {where}", rate_n, "tokens/s",
                               baseline=rate1, baseline_name="the same, one stream",
                               target=">= 2.5x"),
            ReportRow.measured(f"generation: mean time to first token, {where}", mean_n, "ms",
                               baseline=ttft1, baseline_name="the same, one stream",
                               target="<= 2x")]


def report_rows(single: list[Row]) -> list[ReportRow]:
    """The make-bench rows: each service path's tokens/s and TTFT next to the raw loop's."""
    base = single[0]
    rows = []
    for row in single[1:]:
        rows.append(ReportRow.measured(f"{row.name}: tokens/s", row.tokens_per_s, "tokens/s",
                                       baseline=base.tokens_per_s, baseline_name=base.name,
                                       target=">= 0.95x raw"))
        rows.append(ReportRow.measured(f"{row.name}: time to first token", row.ttft_ms, "ms",
                                       baseline=base.ttft_ms, baseline_name=base.name,
                                       target="<= raw + 5 ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=128,
                        help="tokens generated per request (default 128)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per path (default 3)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="llama.cpp threads per context (default: the CPUs available)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context window (default 2048)")
    parser.add_argument("--streams", type=int, default=4,
                        help="concurrent streams for the aggregate figure (default 4)")
    parser.add_argument("--parallel", type=lambda v: [int(p) for p in v.split(",")],
                        default=[1, 2], help="GENERATION_PARALLEL values to run the concurrent "
                        "streams on, comma-separated (default 1,2)")
    parser.add_argument("--batched", type=lambda v: [p.strip() == "true" for p in v.split(",")],
                        default=[False, True], help="GENERATION_BATCHED values to run the "
                        "concurrent streams on, comma-separated (default false,true)")
    parser.add_argument("--concurrent-only", action="store_true",
                        help="skip the single-stream table")
    parser.add_argument("--no-router", dest="router", action="store_false",
                        help="skip the router column")
    parser.add_argument("--prefix-cache", default=[True],
                        type=lambda v: [p.strip() == "true" for p in v.split(",")],
                        help="GENERATION_PREFIX_CACHE values of the batched engine, "
                        "comma-separated (default true)")
    parser.add_argument("--prompts", type=_prompt_kinds,
                        default=["same", "distinct"], help="prompts of the concurrent streams: "
                        "same, distinct (a shared system prompt, a user message each), or both "
                        "comma-separated (default same,distinct)")
    add_json_argument(parser)
    asyncio.run(run(parser.parse_args()))


def _prompt_kinds(value: str) -> list[str]:
    kinds = [kind.strip() for kind in value.split(",")]
    unknown = [kind for kind in kinds if kind not in ("same", "distinct")]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: not same or distinct")
    return kinds


if __name__ == "__main__":
    main()
