"""The router service's wiring: policy files, backend pool and its probes, the remote engines,
the generation client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from upcoach_llm.api import generation_pb2, generation_pb2_grpc, router_pb2, router_pb2_grpc
from upcoach_llm.api.topology import GENERATION
from upcoach_llm.common.backends import BackendConfig, load_backends
from upcoach_llm.common.catalog import load_edge_models, load_models
from upcoach_llm.common.channels import aio_channel, authed, service_address
from upcoach_llm.common.chat import SamplingDefaults
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.logging import get_logger
from upcoach_llm.common.server import GrpcService
from upcoach_llm.common.variables import VARIABLES
from upcoach_llm.engines.base import EngineHealth
from upcoach_llm.engines.probes import probe_backend
from upcoach_llm.engines.types import type_of
from upcoach_llm.router.backend_pool import BackendPool
from upcoach_llm.router.executor import ChatExecutor
from upcoach_llm.router.policy import load_policy
from upcoach_llm.router.safety.check import SafetyCheck
from upcoach_llm.router.servicer import RouterServicer
from upcoach_llm.router.targets import RemoteEngines

log = get_logger(__name__)
GENERATION_SERVICE = generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name


@dataclass(frozen=True)
class RouterSettings:
    """GENERATION_ADDR, ROUTER_HEALTH_INTERVAL_S, ROUTER_PROBE_TIMEOUT_S, ROUTER_STARTUP_WAIT_S,
    ROUTER_CIRCUIT_FAILURES, STREAM_FLUSH_MS, the sampling defaults (GENERATION_DEFAULT_*: the
    router runs remote engines itself), the internal credentials it calls generation with,
    SAFETY_CHECK and SAFETY_THREADS."""

    generation_addr: str
    health_interval: float
    probe_timeout: float
    startup_wait: float
    auth: InternalAuth
    flush_s: float = 0.005
    circuit_failures: int = 3
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    safety_check: bool = True
    safety_threads: int = 1

    @classmethod
    def from_env(cls) -> RouterSettings:
        return cls(
            generation_addr=service_address(GENERATION),
            health_interval=VARIABLES.float("ROUTER_HEALTH_INTERVAL_S"),
            probe_timeout=VARIABLES.float("ROUTER_PROBE_TIMEOUT_S"),
            startup_wait=VARIABLES.float("ROUTER_STARTUP_WAIT_S"),
            auth=InternalAuth.from_env(),
            flush_s=VARIABLES.float("STREAM_FLUSH_MS") / 1000,
            circuit_failures=VARIABLES.int("ROUTER_CIRCUIT_FAILURES"),
            sampling=SamplingDefaults.from_env(),
            safety_check=VARIABLES.bool("SAFETY_CHECK"),
            safety_threads=VARIABLES.int("SAFETY_THREADS"),
        )


class RouterService(GrpcService):
    """Reads every policy file at construction; start() loads the crisis check's model, then
    waits for a first healthy backend."""

    def __init__(self, settings: RouterSettings) -> None:
        catalog = load_models()
        self._settings = settings
        self._policy = load_policy(catalog, load_edge_models())
        self._backends = load_backends(catalog).backends
        self._remote = RemoteEngines(catalog, self._backends)
        self._safety = (SafetyCheck.packaged(threads=settings.safety_threads)
                        if settings.safety_check else SafetyCheck.off())
        if not settings.safety_check:
            log.warning("SAFETY_CHECK is off: conversations about self-harm, harm to others or "
                        "medical emergencies go to the model like any other, with no crisis "
                        "response")
        self._channel: grpc.aio.Channel | None = None
        self._pool: BackendPool | None = None

    @classmethod
    def from_env(cls) -> RouterService:
        return cls(RouterSettings.from_env())

    def service_names(self) -> list[str]:
        return [router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name]

    def register(self, server: grpc.aio.Server) -> None:
        """Builds the generation client, the backend pool and the servicer (inside the loop)."""
        auth = self._settings.auth
        self._channel = aio_channel(self._settings.generation_addr, auth)
        self._pool = BackendPool(self._backends, self._prober(self._channel),
                                 self._settings.health_interval,
                                 circuit_failures=self._settings.circuit_failures)
        stub = authed(generation_pb2_grpc.GenerationServiceStub(self._channel), auth)
        executor = ChatExecutor(stub, self._pool, self._remote)
        router_pb2_grpc.add_RouterServiceServicer_to_server(
            RouterServicer(self._policy, self._pool, executor, self._settings.sampling,
                           self._settings.flush_s, self._safety), server)

    def _prober(self, channel: grpc.aio.Channel):
        """Embedded backends: the generation service's health; remote ones: their HTTP API."""
        health = health_pb2_grpc.HealthStub(channel)
        timeout = self._settings.probe_timeout
        address = self._settings.generation_addr

        async def prober(backend: BackendConfig) -> EngineHealth:
            if not type_of(backend).in_process:
                return await probe_backend(backend, timeout)
            try:
                reply = await health.Check(
                    health_pb2.HealthCheckRequest(service=GENERATION_SERVICE), timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                return EngineHealth(False, detail=f"generation service at {address}: "
                                    f"{exc.code().name}")
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                return EngineHealth(False, detail=f"generation service at {address} is not "
                                    "serving yet")
            return EngineHealth(True, models=tuple(backend.models))

        return prober

    async def start(self) -> None:
        """Waits (up to ROUTER_STARTUP_WAIT_S) for a healthy backend, then probes in background."""
        await self._safety.load()
        await self._remote.load()
        await self._wait_for_a_backend()
        self._pool.start()

    async def _wait_for_a_backend(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.startup_wait
        while True:
            await self._pool.probe_all()
            if any(s.healthy for s in self._pool.states) or loop.time() >= deadline:
                break
            await asyncio.sleep(min(0.2, self._settings.health_interval))
        if not any(s.healthy for s in self._pool.states):
            log.warning("serving with no healthy backend", extra={"fields": {
                "backends": {s.name: s.detail for s in self._pool.states}}})

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.stop()
        if self._channel is not None:
            await self._channel.close()
        await self._remote.close()
        await self._safety.close()
