"""The router's view of the backends: health (circuit breaking), load, and the pick.

A request goes only to healthy backends that serve the model (among those their last probe
reported), least outstanding requests first (ties in turn). A background task probes every
backend each ``interval`` seconds and marks it up or down. A request that cannot reach a backend
marks it down at once (the circuit opens) until a probe that started after it succeeds; failures
the backend answered with (HTTP 5xx, a reply cut short, a timeout) open it only after
``circuit_failures`` in a row, so one request's own failure does not take it from every caller.
A request that finds no backend ready for its chain probes that chain's backends once more
before it fails (``resolve_fresh``), so a backend that came up since the last round (a
generation service that finished loading, an Ollama model just pulled) serves it; a circuit a
request opened stays open until the background round.
Each backend's state and load are gauges read when /metrics is scraped.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import Gauge

from upcoach_llm.common.backends import BackendConfig
from upcoach_llm.common.errors import Unavailable
from upcoach_llm.common.logging import get_logger
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.types import type_of

log = get_logger(__name__)

Prober = Callable[[BackendConfig], Awaitable[EngineHealth]]

# On-demand probes (``reprobe``): one per backend per REPROBE_GAP_S whatever the burst of
# requests refused meanwhile (they fail at once with the last findings), and a request waits for
# one at most REPROBE_WAIT_S (a backend that does not answer sooner is down for it).
REPROBE_GAP_S = 0.5
REPROBE_WAIT_S = 0.5

BACKEND_UP = Gauge("upcoach_router_backend_up",
                   "1 while the backend takes requests (circuit closed), 0 while it is down",
                   ["backend", "backend_type"])
BACKEND_OUTSTANDING = Gauge("upcoach_router_backend_outstanding_requests",
                            "Requests the router has in flight on the backend", ["backend"])


@dataclass
class BackendState:
    """One backend and what the router knows of it now."""

    config: BackendConfig
    healthy: bool = False
    detail: str = "not probed yet"
    installed: frozenset[str] = frozenset()
    outstanding: int = 0
    last_pick: int = 0
    probed: bool = field(default=False, repr=False)
    down_at: float = field(default=0.0, repr=False)  # when a request last marked it down
    failures: int = field(default=0, repr=False)  # requests failed in a row since one served
    recorded_at: float = field(default=0.0, repr=False)  # when a probe's result was last taken
    reprobe: asyncio.Future | None = field(default=None, repr=False)  # on-demand probe
    reprobed_at: float = field(default=float("-inf"), repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    def serves(self, model: str) -> bool:
        """Configured for the model, or (Ollama) reports it installed."""
        return model in self.config.models or model in self.installed

    def ready_for(self, model: str) -> bool:
        """Healthy, and the model among those its last probe reported (pulled on Ollama, listed
        by an OpenAI-compatible server's /v1/models): configuring it there is not enough."""
        if not self.healthy:
            return False
        if self.probed or type_of(self.config).pulls_models:
            return model in self.installed
        return True  # set healthy by hand, never probed: its configuration decides

    def missing(self, model: str) -> str:
        """Why a healthy backend cannot take the model: it is not pulled, or not served, there."""
        if type_of(self.config).pulls_models:
            return f"{model} is not pulled there: ollama pull {self.config.engine_model(model)}"
        return (f"{model} is not among the models it serves now "
                f"({', '.join(sorted(self.installed)) or 'none'})")


class NoHealthyBackend(Unavailable):
    """Backends are configured for the chain, but none is ready for any of its models now."""

    def __init__(self, message: str, chain: list[str]) -> None:
        super().__init__(message)
        self.chain = chain


@dataclass(frozen=True)
class Resolution:
    """The model actually served, the backends to try in order, the models skipped, and the
    rest of the fallback chain (where the request goes when every candidate fails)."""

    model: str
    candidates: list[BackendState]
    skipped: list[str]
    rest: tuple[str, ...] = ()


def _watch(state: BackendState) -> None:
    """Gauges read from the state when scraped: nothing on the request path."""
    BACKEND_UP.labels(state.name, state.config.type).set_function(lambda: float(state.healthy))
    BACKEND_OUTSTANDING.labels(state.name).set_function(lambda: state.outstanding)


class BackendPool:
    """Tracks backend health and load; picks backends for a fallback chain."""

    def __init__(self, backends: list[BackendConfig], prober: Prober, interval: float, *,
                 circuit_failures: int = 3) -> None:
        self.states = [BackendState(config=b) for b in backends]
        for state in self.states:
            _watch(state)
        self._prober = prober
        self._interval = interval
        self._circuit_failures = circuit_failures
        self._turn = itertools.count(1)
        self._task: asyncio.Task | None = None

    def resolve(self, chain: list[str], *, pick: bool = False) -> Resolution:
        """Walks the chain to the first model a healthy backend serves. With ``pick`` the first
        candidate counts as picked now (a chat about to run; a query such as Route does not)."""
        skipped: list[str] = []
        down: list[str] = []
        for index, model in enumerate(chain):
            configured = [s for s in self.states if s.serves(model)]
            healthy = [s for s in configured if s.ready_for(model)]
            if healthy:
                healthy.sort(key=lambda s: (s.outstanding, s.last_pick))
                if pick:  # a burst resolved before any of its streams starts goes round
                    healthy[0].last_pick = next(self._turn)
                return Resolution(model=model, candidates=healthy, skipped=skipped,
                                  rest=tuple(chain[index + 1:]))
            down += [f"{s.name} ({s.detail or s.missing(model)})" for s in configured]
            skipped.append(model)
        if down:
            raise NoHealthyBackend(f"no healthy backend serves {' or '.join(chain)}: "
                                   f"{'; '.join(down)}", chain)
        raise Unavailable(f"none of {', '.join(chain)} is served in this environment; "
                          "configure a backend for one of them (config/backends.yaml, "
                          "OLLAMA_URL or VLLM_URL)")

    async def resolve_fresh(self, chain: list[str], *, pick: bool = False) -> Resolution:
        """``resolve``; when no backend is ready for the chain, once more after ``reprobe``."""
        try:
            return self.resolve(chain, pick=pick)
        except NoHealthyBackend:
            if not await self.reprobe(chain):
                raise
        return self.resolve(chain, pick=pick)  # refused again: with what the probe found

    async def reprobe(self, chain: list[str]) -> bool:
        """Probes now the backends configured for ``chain`` that are not ready for it, for a
        request that ``resolve`` refused, and waits for them up to ``REPROBE_WAIT_S``; True when
        one answered (resolve again). A backend whose circuit a request opened is left to the
        background round (its cool-down), one probed on demand less than ``REPROBE_GAP_S`` ago
        is not probed again, and callers share a probe in flight."""
        now = time.monotonic()
        probes: list[asyncio.Future] = []
        for state in self.states:
            if (not any(state.serves(m) and not state.ready_for(m) for m in chain)
                    or state.down_at > state.recorded_at):
                continue
            if state.reprobe is None or state.reprobe.done():
                if now - state.reprobed_at < REPROBE_GAP_S:
                    continue
                state.reprobed_at = now
                state.reprobe = asyncio.ensure_future(self._probe([state]))
            probes.append(state.reprobe)
        if not probes:
            return False
        done, _ = await asyncio.wait(probes, timeout=REPROBE_WAIT_S)  # never cancels them
        return bool(done)

    @contextmanager
    def track(self, state: BackendState) -> Iterator[None]:
        """Counts a request as outstanding on the backend while it runs."""
        state.outstanding += 1
        state.last_pick = next(self._turn)
        try:
            yield
        finally:
            state.outstanding -= 1

    def request_failed(self, state: BackendState, detail: str, *, reached: bool) -> None:
        """A request failed on the backend: the circuit opens at once when it was not reached,
        else after ``circuit_failures`` failures in a row."""
        state.failures += 1
        if not reached or state.failures >= self._circuit_failures:
            self.mark_down(state, detail)

    def request_served(self, state: BackendState) -> None:
        """The backend answered a request: its count of failures in a row starts again."""
        state.failures = 0

    def mark_down(self, state: BackendState, detail: str) -> None:
        """Opens the circuit after a failed request; the next good probe closes it."""
        if state.healthy:
            log.warning("backend down", extra={"fields": {"backend": state.name,
                                                          "reason": detail}})
        state.healthy = False
        state.detail = detail
        state.down_at = time.monotonic()

    def forget(self, state: BackendState, model: str, detail: str) -> None:
        """The backend cannot serve ``model`` now (a request found it gone): it is not picked for
        it until a probe reports it again."""
        if model in state.installed:
            log.warning("model gone from backend", extra={"fields": {
                "backend": state.name, "model": model, "reason": detail}})
        state.installed = state.installed - {model}
        state.probed = True  # from now on, what the probes report decides

    async def probe_all(self) -> None:
        """Probes every backend once, concurrently, and records the results; a good result from
        a probe that started before a request marked the backend down leaves it down (the next
        probe decides)."""
        await self._probe(self.states)

    async def _probe(self, states: list[BackendState]) -> None:
        started = time.monotonic()
        results = await asyncio.gather(*(self._prober(s.config) for s in states),
                                       return_exceptions=True)
        for state, result in zip(states, results, strict=True):
            if isinstance(result, Exception):
                log.error("backend probe failed", exc_info=result,
                          extra={"fields": {"backend": state.name}})
                result = EngineHealth(False, detail=f"probe failed: {type(result).__name__}")
            if result.healthy and state.down_at > started:
                continue
            self._record(state, result)

    def _record(self, state: BackendState, result: EngineHealth) -> None:
        if result.healthy != state.healthy or not state.probed:
            fields = {"backend": state.name, "type": state.config.type}
            if result.healthy:
                log.info("backend up", extra={"fields": {**fields,
                                                         "models": list(result.models)}})
            else:
                log.warning("backend down", extra={"fields": {**fields,
                                                              "reason": result.detail}})
        state.healthy = result.healthy
        state.detail = "" if result.healthy else result.detail
        if result.healthy:
            state.failures = 0
        state.installed = frozenset(result.models)
        state.probed = True
        state.recorded_at = time.monotonic()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.probe_all()
            except Exception:
                log.exception("backend health round failed")

    def start(self) -> None:
        """Starts the background health checks."""
        self._task = asyncio.create_task(self._run(), name="backend-health")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *(s.reprobe for s in self.states)) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
