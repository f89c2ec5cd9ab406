"""Runs a routed chat on the generation service, failing over between backends.

A request is retried on the next candidate backend only while nothing has been sent to the
caller; once a token went out, a failure ends the stream with that error (never a silent
truncation). Deadlines pass through: each call to generation gets the caller's remaining time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from services.common.errors import Unavailable
from services.common.logging import get_logger
from services.router.backend_pool import BackendPool, Resolution
from upcoach.llm.v1 import common_pb2, generation_pb2, generation_pb2_grpc

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
        failures = []
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
                    if exc.code() not in RETRYABLE:
                        raise
                    self._pool.mark_down(state, exc.details() or exc.code().name)
                    if sent:
                        raise
                    failures.append(f"{state.name}: {exc.details()}")
                    log.warning("failing over", extra={"fields": {
                        "request_id": job.request_id, "backend": state.name,
                        "error": exc.details()}})
                finally:
                    call.cancel()
        raise Unavailable(f"every backend for {job.resolution.model} failed: "
                          + "; ".join(failures))

    async def generate(self, job: Job, timeout: float | None) -> tuple[
            generation_pb2.GenerateResponse, str]:
        """Returns the whole reply and the backend that produced it; fails over on error."""
        failures = []
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
                    self._pool.mark_down(state, exc.details() or exc.code().name)
                    failures.append(f"{state.name}: {exc.details()}")
        raise Unavailable(f"every backend for {job.resolution.model} failed: "
                          + "; ".join(failures))
