"""Runs a routed chat on its backends, failing over between them.

Remote backends are called by their engines in this process, in-process ones through the
generation service (router/targets.py). A request is retried on the next candidate backend only
while nothing has been sent to the caller; once a token went out, a failure ends the stream with
that error (never a silent truncation). When every backend of the model failed, the rest of the
model's fallback chain is resolved again (the failed backends are down now, busy ones skipped for
this request) and the request goes on to the next model served; the reply's route names the model
that answered and the models passed over. Deadlines pass through: each call to generation gets the
caller's remaining time, and a remote engine's call is cancelled with the caller's.

A backend that cannot serve the model now (FAILED_PRECONDITION: not pulled there any more, its
API key refused) also sends the request on, and the model is forgotten there until the next probe.
Busy is not down: RESOURCE_EXHAUSTED (every context busy, queue full) or an UNAVAILABLE that
carries a retry delay (a server that is draining) sends the request to the next candidate but
leaves the backend's health alone. When every candidate was busy the caller gets
RESOURCE_EXHAUSTED with the shortest retry delay. A backend that could not be reached (or the
generation service failing) is marked down at once; one that answered with a failure (HTTP 5xx,
a reply cut short, a timeout) only after several in a row (backend_pool.py), and the probes
decide the rest.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import grpc
from prometheus_client import Counter

from upcoach_llm.api import generation_pb2_grpc
from upcoach_llm.api.status_details import retry_delay_of
from upcoach_llm.common import tracing
from upcoach_llm.common.errors import ResourceExhausted, ServiceError, Unavailable, Unreachable
from upcoach_llm.common.logging import get_logger
from upcoach_llm.router.backend_pool import BackendPool, BackendState, Resolution
from upcoach_llm.router.targets import (
    Chat,
    Piece,
    RemoteEngines,
    engine_pieces,
    generation_pieces,
    traced_pieces,
)

log = get_logger(__name__)

# Codes that mean "this backend could not take the request"; anything else is the request's fault
# (INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND...) and is returned to the caller as is.
# FAILED_PRECONDITION is the backend's state, not the caller's: the model is no longer pulled
# there, or the backend refused the stack's API key; the model is forgotten on that backend
# until its next probe.
UNSERVED = grpc.StatusCode.FAILED_PRECONDITION
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, UNSERVED}

FAILOVERS = Counter("upcoach_router_failovers",
                    "Requests a backend could not take (the next candidate, if any, got them), by "
                    "backend and code (RESOURCE_EXHAUSTED: busy; UNAVAILABLE: down or draining; "
                    "FAILED_PRECONDITION: the model is gone there or its API key was refused)",
                    ["backend", "code"])


@dataclass(frozen=True)
class Job:
    """A chat ready to run: where (the resolution) and what."""

    resolution: Resolution
    chat: Chat

    @property
    def request_id(self) -> str:
        return self.chat.request_id


@dataclass(frozen=True)
class Served:
    """Who answered: the backend, the model, and the models of the chain passed over."""

    backend: str
    model: str
    skipped: list[str]


@dataclass(frozen=True)
class Failure:
    """How one backend refused a request, whichever way it was called."""

    code: grpc.StatusCode
    message: str
    retry_after_s: float | None
    reached: bool  # the backend answered (a remote engine's HTTP error), or was not reached

    @classmethod
    def of(cls, exc: grpc.aio.AioRpcError | ServiceError) -> Failure:
        if isinstance(exc, ServiceError):  # a remote engine, called in this process
            return cls(exc.code, exc.message, exc.retry_after_s,
                       reached=not isinstance(exc, Unreachable))
        # The generation service is this stack's own: an UNAVAILABLE from it means it is down.
        return cls(exc.code(), exc.details() or exc.code().name, retry_delay_of(exc),
                   reached=False)


class _Attempts:
    """What the candidates answered so far, and the error to give when none could take it."""

    def __init__(self, pool: BackendPool, job: Job) -> None:
        self._pool = pool
        self._job = job
        self._failures: list[str] = []
        self._retry_delays: list[float] = []
        self.models = [job.resolution.model]

    def failed(self, state: BackendState, model: str, failure: Failure) -> None:
        """Records a retryable failure; a busy or draining backend keeps its health."""
        delay = failure.retry_after_s
        busy = failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        if busy or delay is not None:
            self._retry_delays.append(delay if delay is not None else 1.0)
        if failure.code == UNSERVED:
            self._pool.forget(state, model, failure.message)
        elif not busy and delay is None:
            self._pool.request_failed(state, failure.message, reached=failure.reached)
        self._failures.append(f"{state.name}: {failure.message}")
        FAILOVERS.labels(state.name, failure.code.name).inc()
        log.warning("failing over", extra={"fields": {
            "request_id": self._job.request_id, "backend": state.name,
            "code": failure.code.name, "error": failure.message}})

    def error(self) -> Exception:
        model = self._job.resolution.model
        if len(self.models) > 1:
            model = " or ".join(self.models)
        summary = "; ".join(self._failures)
        if self._retry_delays:
            return ResourceExhausted(f"every backend for {model} is busy, retry shortly: "
                                     f"{summary}", retry_after_s=max(1.0, min(self._retry_delays)))
        return Unavailable(f"every backend for {model} failed: {summary}")


class ChatExecutor:
    """Runs jobs on the chosen backends: remote engines here, the others through generation."""

    def __init__(self, stub: generation_pb2_grpc.GenerationServiceStub, pool: BackendPool,
                 remote: RemoteEngines) -> None:
        self._stub = stub
        self._pool = pool
        self._remote = remote

    def _pieces(self, state: BackendState, job: Job,
                timeout: float | None) -> AsyncIterator[Piece]:
        engine = self._remote.engines.get(state.name)
        if engine is not None:
            pieces = engine_pieces(engine, state.config, job.chat)
        else:
            pieces = generation_pieces(self._stub, state.name, job.chat, timeout)
        return traced_pieces(pieces, state.config, job.chat) if tracing.ENABLED else pieces

    async def stream(self, job: Job, timeout: float | None,
                     ) -> AsyncIterator[tuple[Served, Piece]]:
        """Yields (who answered, piece) as they come; fails over before the first, to the next
        backend, then to the next model of the chain."""
        attempts = _Attempts(self._pool, job)
        skipped = list(job.resolution.skipped)
        tried: set[int] = set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            served_model = job.resolution.model
            for state in job.resolution.candidates:
                sent = False
                served = Served(state.name, served_model, skipped)
                tried.add(id(state))
                # Each attempt gets what is left of the caller's time, not all of it again.
                left = None if deadline is None else max(0.001, deadline - time.monotonic())
                with self._pool.track(state):
                    try:
                        async for piece in self._pieces(state, job, left):
                            if not sent:
                                sent = True
                                self._pool.request_served(state)
                            yield served, piece
                        return
                    except (grpc.aio.AioRpcError, ServiceError) as exc:
                        failure = Failure.of(exc)
                        if failure.code not in RETRYABLE or sent:
                            raise
                        attempts.failed(state, served_model, failure)
                        if failure.code == UNSERVED:  # the backend may serve the next model
                            tried.discard(id(state))
            after = self._next_model(job, tried)
            if after is None:
                raise attempts.error()
            skipped = [*skipped, served_model, *after.skipped]
            job = Job(after, replace(job.chat, model=after.model))
            attempts.models.append(after.model)

    def _next_model(self, job: Job, tried: set[int]) -> Resolution | None:
        """The rest of the chain, resolved again without the backends already tried: a model
        whose every candidate was tried is passed over for the next."""
        rest = list(job.resolution.rest)
        passed: list[str] = []
        while rest:
            try:
                after = self._pool.resolve(rest)
            except Unavailable:
                return None
            candidates = [s for s in after.candidates if id(s) not in tried]
            if candidates:
                log.warning("falling back to the next model", extra={"fields": {
                    "request_id": job.request_id, "failed": job.resolution.model,
                    "model": after.model}})
                return replace(after, candidates=candidates,
                               skipped=[*passed, *after.skipped])
            passed += [*after.skipped, after.model]
            rest = list(after.rest)
        return None

    async def generate(self, job: Job, timeout: float | None) -> tuple[Served, Piece, Piece]:
        """The whole reply: (who answered, its text pieces joined, last piece); fails over like
        ``stream``."""
        parts: list[Piece] = []
        last: tuple[Served, Piece] | None = None
        # Read to the end, past the finish: a remote engine then hands its connection back.
        async for served, piece in self.stream(job, timeout):
            if piece.text or piece.logprobs:
                parts.append(piece)
            if piece.finish_reason:
                last = served, piece
        if last is None:
            raise Unavailable(f"{job.resolution.model}: the reply ended without a finish reason")
        return last[0], Piece.joined(parts) if parts else Piece(), last[1]
