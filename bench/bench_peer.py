"""A peer benchmark: this stack against LiteLLM's proxy, both in front of the same fake upstream.

    .venv/bin/python -m bench.bench_peer [--duration 5] [--rounds 4] [--clients 32]
                                         [--chunks 20] [--token-delay-ms 10] [--auth]
                                         [--safety] [--skip-litellm] [--json PATH]

One run starts, each as its own process on a free port:

- the fake upstream (bench/fake_upstream.py): a fast contract double of OpenAI's chat API, one
  process; every scenario uses the same one, choosing its chunk count and delay per request
  (the ``[fake-upstream chunks=N token-delay-ms=D]`` directive in the prompt, which both proxies
  relay verbatim);
- LiteLLM's proxy (``litellm --config <generated yaml> --num_workers 1``): model ``mistral`` ->
  ``openai/fake-model`` at the fake upstream, a dummy upstream key, no database, no cache,
  LITELLM_LOG=WARNING, telemetry off (LITELLM_TELEMETRY_DISABLED), the local model cost map. It
  lives in its own venv, ``build/peer/litellm-venv``, installed there on first use
  (``pip install 'litellm[proxy]'``) and reused afterwards;
- this stack: generation, router and gateway (bench/support.py), with the fake upstream as its
  only backend (VLLM_URL, served as the catalog's ``mistral``; EMBEDDED_BACKEND=false), the
  response cache off (CACHE_MODE=off), no rate limit (RATE_LIMIT_RPM=0), and the crisis check
  off (SAFETY_CHECK=false) unless ``--safety``: LiteLLM has nothing like it, so the default
  compares the two proxies' relay work alone; with ``--safety`` every request also pays the
  check's MiniLM run on its new message (bench/bench_safety.py measures the check alone).

Every request's user message is new (numbered), so nothing kept per message answers from memory.

Neither proxy checks a key by default: the stack runs without LLM_API_KEY and LiteLLM without a
master key (recent LiteLLM refuses that unless told
LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true, which this sets). With ``--auth`` both
check one: the stack's LLM_API_KEY and LiteLLM's LITELLM_MASTER_KEY are the same random key,
which every request carries (the direct upstream ignores it).

Then the same closed-loop load goes to ``POST /v1/chat/completions`` of (a) the fake upstream
directly, (b) LiteLLM, (c) the stack's gateway, in turn, for three scenarios:

- JSON: a non-streamed reply of ``--chunks`` words (the stack streams it from the upstream and
  answers JSON, LiteLLM asks the upstream for JSON);
- stream: ``--chunks`` content chunks, sent by the upstream as fast as it can;
- paced stream: the same chunks ``--token-delay-ms`` apart (a model producing tokens).

Each scenario runs with 1 client (figure: p50 latency of the whole reply; "added" is a path's
p50 minus the direct upstream's p50 in the same round) and with ``--clients`` clients (figure:
completed replies per second: the replies that ended within ``--duration`` over the time from
the start to the last of them, which stays fair when a reply takes a good part of the run, as
LiteLLM's do at 32 clients). A client is one keep-alive HTTP/1.1 connection that sends the
next request as soon as a reply ends; all clients share one asyncio (uvloop) process that parses
replies minimally (HTTP framing, ``[DONE]``, content chunks counted; a reply without ``[DONE]``
or any content, or not HTTP 200, is an error). Requests still running at the end of
``--duration`` finish without counting. Progress lines also give the content events seen per
reply: a proxy may merge chunks that reach it together (this stack relays what one network read
brought as one event), so a fast stream can arrive in fewer, larger events. Rounds alternate the
order of the three paths (forward, then reversed: an even ``--rounds`` runs each order as
often). Each figure is the median over ``--rounds``. Before the rounds each path answers one
request of each scenario, checked in full (the reply's text is the upstream's), and gets a short
warm-up load; then each path's CPU use while idle is printed (all of them stay
up throughout, so an idle one's background work is part of every other's run).

The stack's CPU per relayed token, in the paced scenario at ``--clients`` clients: utime+stime
(/proc/<pid>/stat) of the gateway, router and generation processes from the moment the load
starts to the moment the last reply ends, over the tokens relayed (chunks per reply x replies);
LiteLLM's process gets the same measurement, as the baseline. Its second baseline is the floor
of this design: in every round, right after the paced runs, bench/grpc_floor.py passes the same
load over one bare gRPC hop (a server sending a message per token, ``--clients`` callers on one
channel, nothing else), and its CPU per message at both ends is what the router-to-gateway hop
alone costs per token.

Everything shares the machine (2 cores here): the figures compare paths on the same machine in
the same run, not absolute capacities.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import grpc_floor
from bench.fake_upstream import FakeUpstream, Settings
from bench.proc_cpu import cpu_seconds, process_tree
from bench.report import Row, add_json_argument, format_table, write_rows
from bench.support import start_stack
from upcoach_llm.dev.ports import free_port
from upcoach_llm.dev.stack import Stack

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
LITELLM_VENV = ROOT / "build" / "peer" / "litellm-venv"
UPSTREAM_MODEL = "fake-model"
CATALOG_MODEL = "mistral"
PROMPT = "Give me one short tip for a better morning routine."
_CONTENT = re.compile(rb'"content": ?"[^"]')  # a delta with text (not the role chunk's "")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[ \t]*chunked", re.IGNORECASE)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- what is measured -------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    stream: bool
    delay_ms: float


@dataclass
class Target:
    """One path under load: where it listens, the model name it takes, its processes."""

    key: str
    label: str
    address: str
    model: str
    root_pids: Callable[[], list[int]]

    api_key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def requests(self, scenario: Scenario, chunks: int) -> Callable[[], bytes]:
        """The next request's bytes, each with a user message no earlier request had."""
        auth = "".join(f"{k}: {v}\r\n" for k, v in self.headers().items())
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {self.address}\r\n{auth}"
                "Content-Type: application/json\r\nContent-Length: ").encode()

        def next_request() -> bytes:
            payload = json.dumps(body(self.model, scenario, chunks)).encode()
            return head + b"%d\r\n\r\n" % len(payload) + payload

        return next_request


def body(model: str, scenario: Scenario, chunks: int) -> dict:
    """A request whose user message is new (numbered): nothing a proxy keeps per message, such
    as the stack's crisis-check results, answers it from memory."""
    directive = f"[fake-upstream chunks={chunks} token-delay-ms={scenario.delay_ms:g}]"
    content = f"{PROMPT} (request {next(_NUMBERS)}) {directive}"
    return {"model": model, "messages": [{"role": "user", "content": content}],
            "max_tokens": 4 * chunks, "stream": scenario.stream}


_NUMBERS = itertools.count(1)


@dataclass
class Load:
    """What one closed-loop run saw."""

    requests_per_s: float
    latencies_ms: list[float]
    replies: int  # every completed reply, those finishing after the deadline included
    errors: int
    content_events: int  # SSE chunks with text, over every completed reply
    cpu_s: float | None  # CPU of the target's processes over the whole run
    first_error: str | None = None

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


# --- a lean closed-loop load generator --------------------------------------------------------

class _Client(asyncio.Protocol):
    """One keep-alive connection: sends the request, parses the reply (Content-Length or chunked
    framing), records it, sends the next until the deadline."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = bytearray()
        self.body = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.state = "idle"
        self.remaining = 0
        self.ok = False
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state != "idle":
            self.run.error(f"connection lost mid-reply ({exc or 'closed by the server'})")
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self) -> None:
        assert self.transport is not None
        self.state = "head"
        self.started = time.perf_counter()
        self.transport.write(self.run.next_request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        buffer = self.buffer
        while True:
            if self.state == "head":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end + 2])
                del buffer[:end + 4]
                self.ok = head.startswith(b"HTTP/1.1 200")
                self.body.clear()
                if _CHUNKED.search(head):
                    self.state = "chunked"
                else:
                    match = _CONTENT_LENGTH.search(head)
                    self.remaining = int(match.group(1)) if match else 0
                    self.state = "length"
            elif self.state == "length":
                if len(buffer) < self.remaining:
                    return
                self.body += buffer[:self.remaining]
                del buffer[:self.remaining]
                self.finish()
            elif self.state == "chunked":
                line = buffer.find(b"\r\n")
                if line < 0:
                    return
                size = int(bytes(buffer[:line]).split(b";", 1)[0], 16)
                if len(buffer) < line + 4 + size:
                    return
                self.body += buffer[line + 2:line + 2 + size]
                del buffer[:line + 4 + size]  # a last chunk carries no trailers here
                if size == 0:
                    self.finish()
            else:
                return

    def finish(self) -> None:
        now = time.perf_counter()
        self.state = "idle"
        run = self.run
        body = bytes(self.body)
        if run.stream:
            events = len(_CONTENT.findall(body))
            good = self.ok and events > 0 and b"data: [DONE]" in body
        else:
            events = 0
            good = self.ok and b'"choices"' in body
        if not good:
            run.error(f"HTTP {'200' if self.ok else 'error'}: {body[:300]!r}")
        else:
            run.replies += 1
            run.content_events += events
            if now <= run.deadline:
                run.latencies.append((now - self.started) * 1000)
                run.last_within = now
        if now < run.deadline and self.transport is not None and not self.transport.is_closing():
            self.send()
        elif self.transport is not None:
            self.transport.close()


@dataclass
class _Run:
    next_request: Callable[[], bytes]
    stream: bool
    deadline: float = float("inf")
    last_within: float = 0.0  # when the last reply that counts ended
    latencies: list[float] = field(default_factory=list)
    replies: int = 0
    errors: int = 0
    content_events: int = 0
    first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


async def load(target: Target, scenario: Scenario, chunks: int, clients: int,
               duration: float) -> Load:
    """``clients`` connections in a closed loop for ``duration`` seconds."""
    run = _Run(target.requests(scenario, chunks), scenario.stream)
    loop = asyncio.get_running_loop()
    host, port = target.address.rsplit(":", 1)
    connections = [(await loop.create_connection(lambda: _Client(run), host, int(port)))[1]
                   for _ in range(clients)]
    pids = process_tree(target.root_pids())
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    run.deadline = started + duration
    for connection in connections:
        connection.send()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in connections)),
                               duration + 120)
    except TimeoutError:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
        run.error("replies still running 120 s after the deadline")
    cpu_after = cpu_seconds(pids)
    within = len(run.latencies)
    span = run.last_within - started
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Load(within / span if within and span > 0 else 0.0, run.latencies, run.replies,
                run.errors, run.content_events, cpu, run.first_error)


# --- the three paths --------------------------------------------------------------------------

def litellm_executable() -> Path:
    """LiteLLM's proxy command from its own venv, installed there on first use."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    progress(f"installing LiteLLM's proxy into {LITELLM_VENV.relative_to(ROOT)} "
             "(first use; this takes a few minutes)...")
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = subprocess.Popen([str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install",
                            "--progress-bar", "off", "litellm[proxy]"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert pip.stdout is not None
    for line in pip.stdout:
        if line.startswith(("Collecting", "Installing", "Successfully", "ERROR")):
            progress(f"  pip: {line.rstrip()[:150]}")
    if pip.wait() != 0 or not exe.exists():
        raise RuntimeError("pip install 'litellm[proxy]' failed (see the lines above)")
    return exe


class LiteLLM:
    """LiteLLM's proxy as a subprocess: one worker, no database, no cache, no key."""

    def __init__(self, upstream_url: str, port: int, key: str | None) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.folder = tempfile.mkdtemp(prefix="bench-peer-litellm-")
        config = Path(self.folder) / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {CATALOG_MODEL}\n"
            "    litellm_params:\n"
            f"      model: openai/{UPSTREAM_MODEL}\n"
            f"      api_base: {upstream_url}/v1\n"
            "      api_key: sk-dummy\n"
            "litellm_settings:\n"
            "  cache: false\n")
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "LITELLM_MASTER_KEY", "PYTHONPATH", "VIRTUAL_ENV")
               and not k.startswith(("REDIS_", "OPENAI_"))}
        env.update({"LITELLM_LOG": "WARNING", "LITELLM_TELEMETRY_DISABLED": "true",
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        if key:
            env["LITELLM_MASTER_KEY"] = key
        else:
            env["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
        self.log = Path(self.folder) / "litellm.log"
        with open(self.log, "wb") as log:
            # its own folder as working directory: LiteLLM reads a .env from there
            self.process = subprocess.Popen(
                [str(litellm_executable()), "--config", str(config), "--host", "127.0.0.1",
                 "--port", str(port), "--num_workers", "1"],
                cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"LiteLLM exited with {self.process.returncode}: "
                                   f"{self.log.read_text()[-1500:]}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/health/liveliness")
                if connection.getresponse().status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.5)
        raise TimeoutError(f"LiteLLM not ready after {timeout:.0f}s; log: {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_peer_stack(upstream: FakeUpstream, key: str | None, safety: bool) -> Stack:
    env = {"VLLM_URL": f"{upstream.url}/v1", "VLLM_MODEL": UPSTREAM_MODEL,
           "VLLM_CATALOG_MODEL": CATALOG_MODEL, "EMBEDDED_BACKEND": "false",
           "CACHE_MODE": "off", "RATE_LIMIT_RPM": "0", "SAFETY_CHECK": str(safety).lower(),
           "REDIS_KEY_PREFIX": f"upcoach:bench:{uuid.uuid4().hex[:8]}:"}
    for name in ("LLM_API_KEY", "OLLAMA_URL", "OLLAMA_PORT"):
        os.environ.pop(name, None)  # no other backend; the API key only with --auth
    if key:
        env["LLM_API_KEY"] = key
    return start_stack(["generation", "router", "gateway"], env, label="peer", timeout=180)


def check_reply(target: Target, scenario: Scenario, chunks: int) -> None:
    """One request parsed in full: the reply's text is the upstream's."""
    host, port = target.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", "/v1/chat/completions",
                           json.dumps(body(target.model, scenario, chunks)),
                           {"Content-Type": "application/json", **target.headers()})
        reply = connection.getresponse()
        data = reply.read()
    finally:
        connection.close()
    if reply.status != 200:
        raise RuntimeError(f"{target.label}, {scenario.label}: HTTP {reply.status}: "
                           f"{data[:300]!r}")
    if scenario.stream:
        events = [json.loads(line[6:]) for line in data.decode().splitlines()
                  if line.startswith("data: {")]
        text = "".join((c.get("delta") or {}).get("content") or ""
                       for e in events for c in e.get("choices") or ())
        done = b"data: [DONE]" in data
    else:
        text, done = json.loads(data)["choices"][0]["message"]["content"], True
    expected = "".join(Settings().pieces(chunks))
    if text != expected or not done:
        raise RuntimeError(f"{target.label}, {scenario.label}: got {text!r} "
                           f"(done: {done}), expected {expected!r}")


# --- rounds and rows --------------------------------------------------------------------------

@dataclass
class Results:
    """Per scenario and client count: per target, one Load per round."""

    loads: dict[tuple[str, int, str], list[Load]] = field(default_factory=dict)
    floors: dict[str, list[grpc_floor.Floor]] = field(default_factory=dict)  # per scenario

    def add(self, scenario: str, clients: int, target: str, run: Load) -> None:
        self.loads.setdefault((scenario, clients, target), []).append(run)

    def of(self, scenario: str, clients: int, target: str) -> list[Load]:
        return self.loads.get((scenario, clients, target), [])


def _describe(target: Target, run: Load, clients: int) -> str:
    text = (f"{target.key:<7} c={clients:<3} p50 {run.p50_ms:8.2f} ms {run.requests_per_s:8,.0f}"
            f" req/s ({run.replies} replies, {run.errors} errors")
    if run.replies and run.content_events:
        text += f", {run.content_events / run.replies:.1f} content events/reply"
    if run.cpu_s is not None:
        text += f", CPU {run.cpu_s:.2f} s"
    return text + ")"


async def measure(targets: list[Target], scenarios: list[Scenario], chunks: int, clients: int,
                  duration: float, rounds: int, warmup: float) -> Results:
    for scenario in scenarios:
        for target in targets:
            check_reply(target, scenario, chunks)
            run = await load(target, scenario, chunks, min(clients, 8), warmup)
            if run.errors:
                raise RuntimeError(f"warm-up of {target.label}, {scenario.label}: "
                                   f"{run.errors} errors, the first: {run.first_error}")
        progress(f"checked and warmed up: {scenario.label}")
    trees = {t.key: process_tree(t.root_pids()) for t in targets}
    before = {k: cpu_seconds(pids) or 0.0 for k, pids in trees.items()}
    await asyncio.sleep(2.0)
    progress("idle CPU (2 s, no load): " + ", ".join(
        f"{k} {((cpu_seconds(pids) or 0.0) - before[k]) / 2.0:.0%}" for k, pids in trees.items()))
    results = Results()
    levels = sorted({1, clients})
    for index in range(rounds):
        for scenario in scenarios:
            for level in levels:
                order = targets if index % 2 == 0 else list(reversed(targets))
                for target in order:
                    run = await load(target, scenario, chunks, level, duration)
                    results.add(scenario.key, level, target.key, run)
                    progress(f"round {index + 1}/{rounds}  {scenario.label:<32} "
                             + _describe(target, run, level))
                    if run.errors:
                        progress(f"  warning: {run.errors} errors, the first: {run.first_error}")
                if scenario.delay_ms and level == clients:
                    try:
                        floor = await asyncio.to_thread(grpc_floor.measure, level, chunks,
                                                        scenario.delay_ms, duration)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        progress(f"  warning: the bare gRPC hop failed this round: {exc}")
                        continue
                    results.floors.setdefault(scenario.key, []).append(floor)
                    progress(f"round {index + 1}/{rounds}  {scenario.label:<32} one bare gRPC "
                             f"hop c={level:<3} {floor.cpu_ms_per_message or 0:.3f} ms CPU per "
                             f"message ({floor.messages} messages)")
    return results


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v == v]  # no NaN
    return statistics.median(values) if values else None


def rows_for(results: Results, scenarios: list[Scenario], clients: int, chunks: int,
             with_litellm: bool) -> list[Row]:
    rows: list[Row] = []
    direct_name, litellm_name = "fake upstream direct, same run", "LiteLLM proxy, same run"

    def p50(scenario: str, target: str) -> float | None:
        return _median([r.p50_ms for r in results.of(scenario, 1, target)])

    def added(scenario: str, target: str) -> float | None:
        pairs = zip(results.of(scenario, 1, target), results.of(scenario, 1, "direct"),
                    strict=True)
        return _median([t.p50_ms - d.p50_ms for t, d in pairs])

    def rate(scenario: str, target: str) -> float | None:
        return _median([r.requests_per_s for r in results.of(scenario, clients, target)])

    def cpu_per_token(scenario: str, target: str) -> float | None:
        return _median([r.cpu_s * 1000 / (r.replies * chunks)
                        for r in results.of(scenario, clients, target)
                        if r.cpu_s is not None and r.replies])

    added_target = {"json": "<= 0.25x LiteLLM's added p50"}
    rate_target = {"json": ">= 8x LiteLLM's req/s", "stream": ">= 10x LiteLLM's req/s"}

    def row(name: str, value: float | None, unit: str, baseline: float | None = None,
            baseline_name: str | None = None, target: str | None = None) -> None:
        if value is not None:
            rows.append(Row.measured(name, value, unit, baseline=baseline,
                                     baseline_name=baseline_name if baseline is not None
                                     else None, target=target))

    for s in scenarios:
        k = s.key
        row(f"{s.label}, 1 client: stack p50", p50(k, "stack"), "ms", p50(k, "direct"),
            direct_name)
        if with_litellm:
            row(f"{s.label}, 1 client: LiteLLM p50", p50(k, "litellm"), "ms", p50(k, "direct"),
                direct_name)
            row(f"{s.label}, 1 client: stack added p50", added(k, "stack"), "ms",
                added(k, "litellm"), "LiteLLM's added p50, same run", added_target.get(k))
            row(f"{s.label}, 1 client: LiteLLM added p50", added(k, "litellm"), "ms")
        else:
            row(f"{s.label}, 1 client: stack added p50", added(k, "stack"), "ms")
        if with_litellm:
            row(f"{s.label}, {clients} clients: stack vs LiteLLM", rate(k, "stack"), "req/s",
                rate(k, "litellm"), litellm_name, rate_target.get(k))
        row(f"{s.label}, {clients} clients: stack vs direct", rate(k, "stack"), "req/s",
            rate(k, "direct"), direct_name, ">= 0.9x the direct upstream" if s.delay_ms else None)
        if with_litellm:
            row(f"{s.label}, {clients} clients: LiteLLM vs direct", rate(k, "litellm"), "req/s",
                rate(k, "direct"), direct_name)
        if s.delay_ms:
            row(f"{s.label}, {clients} clients: stack CPU per relayed token",
                cpu_per_token(k, "stack"), "ms CPU", cpu_per_token(k, "litellm"),
                "LiteLLM's CPU per token, same run", "<= 0.15 ms")
            row(f"{s.label}, {clients} clients: stack CPU per relayed token vs one gRPC hop",
                cpu_per_token(k, "stack"), "ms CPU",
                _median([f.cpu_ms_per_message for f in results.floors.get(k, [])
                         if f.cpu_ms_per_message is not None]),
                "one bare gRPC hop's CPU per message (bench/grpc_floor.py), same run")
    return rows


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs the load generator on uvloop when installed (less client CPU), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds per load run (default: 5)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds; each runs every scenario, client count and path, in "
                             "alternate orders (default: 4, so each order runs as often)")
    parser.add_argument("--clients", type=int, default=32,
                        help="clients (connections) of the throughput runs (default: 32)")
    parser.add_argument("--chunks", type=int, default=20,
                        help="content chunks (tokens) per reply (default: 20)")
    parser.add_argument("--token-delay-ms", type=float, default=10.0,
                        help="delay between chunks in the paced scenario (default: 10)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of warm-up load per path and scenario (default: 1)")
    parser.add_argument("--safety", action="store_true",
                        help="run the stack's crisis check (SAFETY_CHECK) too: a MiniLM run per "
                        "new message, which LiteLLM has no counterpart of (default: off)")
    parser.add_argument("--auth", action="store_true",
                        help="both proxies check an API key (default: neither does)")
    parser.add_argument("--skip-litellm", action="store_true",
                        help="leave LiteLLM out (no install, no LiteLLM rows)")
    add_json_argument(parser)
    args = parser.parse_args()

    chunks = args.chunks
    scenarios = [Scenario("json", "JSON reply", False, 0.0),
                 Scenario("stream", f"stream, {chunks} chunks", True, 0.0),
                 Scenario("paced", f"stream, {chunks} chunks {args.token_delay_ms:g} ms apart",
                          True, args.token_delay_ms)]
    progress(f"{os.cpu_count()} CPUs; starting the fake upstream"
             + ("" if args.skip_litellm else ", LiteLLM") + " and the stack...")
    litellm = stack = None
    key = f"sk-{secrets.token_hex(32)}" if args.auth else None
    with FakeUpstream(free_port(), chunks=chunks, model=UPSTREAM_MODEL) as upstream:
        try:
            if not args.skip_litellm:
                litellm = LiteLLM(upstream.url, free_port(), key)
            stack = start_peer_stack(upstream, key, args.safety)
            progress("stack ready")
            targets = [Target("direct", "fake upstream", f"127.0.0.1:{upstream.port}",
                              UPSTREAM_MODEL, lambda: [upstream.pid])]
            if litellm is not None:
                took = litellm.wait_ready()
                progress(f"LiteLLM ready ({took:.0f}s after the stack)")
                targets.append(Target("litellm", "LiteLLM proxy", litellm.address, CATALOG_MODEL,
                                      lambda: [litellm.process.pid], key))
            targets.append(Target("stack", "stack gateway", stack.spec("gateway").address,
                                  CATALOG_MODEL,
                                  lambda: [p.pid for p in stack.processes.values()], key))
            results = run_loop(measure(targets, scenarios, chunks, args.clients, args.duration,
                                       args.rounds, args.warmup))
        finally:
            if stack is not None:
                stack.stop()
            if litellm is not None:
                litellm.stop()
    rows = rows_for(results, scenarios, args.clients, chunks, litellm is not None)
    print(f"{args.rounds} rounds x {args.duration:g}s per run; {chunks} chunks per reply; "
          f"{args.clients} clients for req/s; API keys {'on' if key else 'off'}; "
          f"paths: {', '.join(t.label for t in targets)}")
    print(format_table({"peer: stack vs LiteLLM on one fake upstream": rows}))
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
