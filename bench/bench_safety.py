"""The crisis check's added latency per chat: the router's detector on a 10-turn conversation.

    .venv/bin/python -m bench.bench_safety [--rounds 5] [--samples 20] [--threads 1] [--json PATH]

One run builds two detectors from config/safety.yaml, in this process, on the same tokenizer and
thread count: the packaged MiniLM as it ships (int8 weights, float compute: the baseline) and
the int8-compute copy the router runs (upcoach_llm/engines/onnx_int8.py). Alternating within
each round, each times ``detector.check`` on a 10-turn coaching conversation:

- cold: all ten user messages new (a conversation the router has never seen);
- warm: nine seen, one new (a chat's next turn: the case every turn pays);
- seen: all ten seen (a retry).

Every figure is the median over the rounds of each round's p50 over ``--samples`` checks. The
issue's goal is < 5 ms p50 for the warm case. It runs on uvloop, as the router does (each check
hands its sentence to the engine's worker thread and back). Nothing else runs in this process;
the machine's other load still shows in absolute figures, less so in the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import uvloop

from bench.report import Row, add_json_argument, write_rows
from upcoach_llm.router.safety.config import load_safety
from upcoach_llm.router.safety.detector import SafetyDetector
from upcoach_llm.router.safety.embeddings import packaged_engine

TURNS = ("I want to build a better morning routine",
         "I usually wake up at 7 but hit snooze a lot.",
         "Coffee first, then I check my phone for half an hour",
         "I'd like to add some exercise, maybe a short run",
         "My knees hurt sometimes when I run, so maybe cycling?",
         "I also want to journal but never stick with it.", "What's a realistic first step?",
         "Ok, and how do I track whether it's working?", "I get discouraged when I miss a day.",
         "Thanks! Can you sum it up as a short plan?")
CASES = ("cold", "warm", "seen")


async def _timed(detector: SafetyDetector, turns: list[str]) -> float:
    started = time.perf_counter()
    verdict = await detector.check(turns)
    elapsed = time.perf_counter() - started
    if verdict is not None:
        raise SystemExit(f"bench_safety: a coaching conversation was flagged: {verdict}")
    return elapsed * 1000


async def one_round(detector: SafetyDetector, tag: str, samples: int) -> dict[str, float]:
    """Each case's p50 in ms over ``samples`` conversations no detector has seen before."""
    times: dict[str, list[float]] = {case: [] for case in CASES}
    for sample in range(samples):
        turns = [f"{t} ({tag}.{sample}.{i})" for i, t in enumerate(TURNS)]
        times["cold"].append(await _timed(detector, turns))
        nxt = [*turns[1:], f"When should I go to bed? ({tag}.{sample})"]
        times["warm"].append(await _timed(detector, nxt))
        times["seen"].append(await _timed(detector, nxt))
    return {case: statistics.median(xs) for case, xs in times.items()}


async def run(rounds: int, samples: int, threads: int) -> list[Row]:
    config = load_safety()
    detectors = {"packaged": SafetyDetector(config, packaged_engine(threads, int8_compute=False)),
                 "int8": SafetyDetector(config, packaged_engine(threads))}
    for detector in detectors.values():
        await detector.load()
    results: dict[str, dict[str, list[float]]] = {
        name: {case: [] for case in CASES} for name in detectors}
    for number in range(rounds):
        order = list(detectors) if number % 2 == 0 else list(reversed(detectors))
        for name in order:
            p50 = await one_round(detectors[name], f"{name}{number}", samples)
            for case, value in p50.items():
                results[name][case].append(value)
            print(f"round {number + 1}/{rounds} {name:8}: " + ", ".join(
                f"{case} {value:.2f} ms" for case, value in p50.items()), flush=True)
    for detector in detectors.values():
        await detector.close()
    rows = []
    for case in CASES:
        value = statistics.median(results["int8"][case])
        baseline = statistics.median(results["packaged"][case])
        rows.append(Row.measured(
            f"crisis check, 10-turn conversation, {case}: p50", value, "ms", baseline=baseline,
            baseline_name="the packaged MiniLM as shipped (float compute)",
            target="< 5 ms (issue 12)" if case == "warm" else None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating (default 5)")
    parser.add_argument("--samples", type=int, default=20,
                        help="conversations per case per round (default 20)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime threads, as SAFETY_THREADS (default 1)")
    add_json_argument(parser)
    args = parser.parse_args()
    rows = uvloop.run(run(args.rounds, args.samples, args.threads))  # the router's loop
    for row in rows:
        print(f"{row.name}: {row.value:.2f} {row.unit} (baseline {row.baseline:.2f}, "
              f"ratio {row.ratio:.2f})")
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
