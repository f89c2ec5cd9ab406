"""Runs a GrpcService in-process on a free port, the way the bootstrap does, for servicer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.server import GrpcService, RunningServer, open_server


@asynccontextmanager
async def serving(service: GrpcService) -> AsyncIterator[tuple[RunningServer, grpc.aio.Channel]]:
    """Starts the service (engine loaded, SERVING, no internal auth) and yields it with a
    channel to it."""
    running = await open_server(service, "127.0.0.1", 0, auth=InternalAuth.disabled())
    try:
        await service.start()
        await running.mark_serving()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield running, channel
    finally:
        await running.drain(0.5)
        await service.stop()
