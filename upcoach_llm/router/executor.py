"""Runs a routed chat on the generation service, failing over between backends.

A request is retried on the next candidate backend only while nothing has been sent to the
caller; once a token went out, a failure ends the stream with that error (never a silent
truncation). Deadlines pass through: each call to generation gets the caller's remaining time.

Busy is not down: RESOURCE_EXHAUSTED (every context busy, queue full) or an UNAVAILABLE that
carries a RetryInfo (a server that is draining) sends the request to the next candidate but
leaves the backend's health alone. When every candidate was busy the caller gets
RESOURCE_EXHAUSTED with the shortest retry delay; only failures to reach a backend (and the
probes) mark it down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from upcoach_llm.api import common_pb2, generation_pb2, generation_pb2_grpc
from upcoach_llm.api.status_details import retry_delay_of
from upcoach_llm.common.errors import ResourceExhausted, Unavailable
from upcoach_llm.common.logging import get_logger
from upcoach_llm.router.backend_pool import BackendPool, BackendState, Resolution

log = get_logger(__name__)

# Codes that mean "this backend could not take the request"; anything else is the request's fault
# (INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND...) and is returned to the caller as is.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


@dataclass(frozen=True)
class Job:
    """A chat ready to run: the resolution and the request fields for generation."""

    request_id: str
    resolution: Resolution
    messages: list[common_pb2.ChatMessage]
    sampling: common_pb2.SamplingParams


class _Attempts:
    """What the candidates answered so far, and the error to give when none could take it."""

    def __init__(self, pool: BackendPool, job: Job) -> None:
        self._pool = pool
        self._job = job
        self._failures: list[str] = []
        self._retry_delays: list[float] = []

    def failed(self, state: BackendState, exc: grpc.aio.AioRpcError) -> None:
        """Records a retryable failure; marks the backend down only when it was not reached."""
        delay = retry_delay_of(exc)
        busy = exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        if busy or delay is not None:
            self._retry_delays.append(delay if delay is not None else 1.0)
        if not busy and delay is None:
            self._pool.mark_down(state, exc.details() or exc.code().name)
        self._failures.append(f"{state.name}: {exc.details()}")
        log.warning("failing over", extra={"fields": {
            "request_id": self._job.request_id, "backend": state.name,
            "code": exc.code().name, "error": exc.details()}})

    def error(self) -> Exception:
        model = self._job.resolution.model
        summary = "; ".join(self._failures)
        if self._retry_delays:
            return ResourceExhausted(f"every backend for {model} is busy, retry shortly: "
                                     f"{summary}", retry_after_s=max(1.0, min(self._retry_delays)))
        return Unavailable(f"every backend for {model} failed: {summary}")


class GenerationExecutor:
    """Sends jobs to the generation service on the chosen backends."""

    def __init__(self, stub: generation_pb2_grpc.GenerationServiceStub, pool: BackendPool) -> None:
        self._stub = stub
        self._pool = pool

    def _request(self, job: Job, backend: str, cls: type) -> object:
        return cls(request_id=job.request_id, model=job.resolution.model, backend=backend,
                   messages=job.messages, sampling=job.sampling)

    async def stream(self, job: Job, timeout: float | None,
                     ) -> AsyncIterator[tuple[str, generation_pb2.GenerateStreamResponse]]:
        """Yields (backend, chunk) as generation sends them; fails over before the first."""
        attempts = _Attempts(self._pool, job)
        for state in job.resolution.candidates:
            sent = False
            with self._pool.track(state):
                call = self._stub.GenerateStream(
                    self._request(job, state.name, generation_pb2.GenerateStreamRequest),
                    timeout=timeout)
                try:
                    async for chunk in call:
                        sent = True
                        yield state.name, chunk
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in RETRYABLE or sent:
                        raise
                    attempts.failed(state, exc)
                finally:
                    call.cancel()
        raise attempts.error()

    async def generate(self, job: Job, timeout: float | None) -> tuple[
            generation_pb2.GenerateResponse, str]:
        """Returns the whole reply and the backend that produced it; fails over on error."""
        attempts = _Attempts(self._pool, job)
        for state in job.resolution.candidates:
            with self._pool.track(state):
                try:
                    reply = await self._stub.Generate(
                        self._request(job, state.name, generation_pb2.GenerateRequest),
                        timeout=timeout)
                    return reply, state.name
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in RETRYABLE:
                        raise
                    attempts.failed(state, exc)
        raise attempts.error()
