"""The one gRPC server bootstrap every service runs on.

    class GenerationService(GrpcService): ...
    if __name__ == "__main__":
        run(GenerationService.from_env, GENERATION)  # upcoach_llm.api.topology

Order of events: bind the port and answer health probes with NOT_SERVING, load the engine
(``start``), flip health to SERVING, serve; on SIGTERM or SIGINT flip health to NOT_SERVING, stop
accepting calls and give in-flight ones ``GRPC_GRACE_S`` to finish, then ``stop`` the engine
(and, with tracing on, export the spans still queued).
A start-up failure (bad config, model that does not load) exits non-zero with the reason logged.
"""

from __future__ import annotations

import abc
import asyncio
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import grpc
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from upcoach_llm.api.topology import Service
from upcoach_llm.common import tracing
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.interceptor import ErrorInterceptor, ReadinessGate
from upcoach_llm.common.internal_auth import InternalAuth
from upcoach_llm.common.logging import configure_logging, get_logger
from upcoach_llm.common.metrics import metrics_port, serve_metrics
from upcoach_llm.common.variables import VARIABLES

log = get_logger(__name__)

# The largest request or reply on any internal call: a whole REST body (MAX_BODY_BYTES, 1 MB) fits.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


def connection_age_options(age_s: float, grace_s: float) -> list[tuple[str, int]]:
    """gRPC's max_connection_age: a GOAWAY after age_s makes round_robin callers reconnect and
    re-resolve, so replicas scaled up later receive traffic; calls in flight get grace_s."""
    if age_s <= 0:
        return []
    return [("grpc.max_connection_age_ms", int(age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(grace_s * 1000))]


class GrpcService(abc.ABC):
    """What a service hands the bootstrap: its servicers and its engine's life cycle."""

    @abc.abstractmethod
    def service_names(self) -> list[str]:
        """Full names of the gRPC services it registers, from their DESCRIPTORs."""

    @abc.abstractmethod
    def register(self, server: grpc.aio.Server) -> None:
        """Adds its servicers to the server; runs inside the event loop, before start()."""

    async def start(self) -> None:  # noqa: B027 - services without an engine have nothing to load
        """Loads and warms up the engine; raising aborts start-up."""

    async def stop(self) -> None:  # noqa: B027
        """Releases the engine after the server has drained."""


@dataclass(frozen=True)
class ServerSettings:
    """Where and how a service listens: <NAME>_PORT, GRPC_HOST, GRPC_GRACE_S,
    GRPC_MAX_CONNECTION_AGE_S (and its grace), INTERNAL_*."""

    host: str
    port: int
    grace_seconds: float
    auth: InternalAuth
    metrics_port: int
    connection_options: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_env(cls, service: Service) -> ServerSettings:
        return cls(
            host=VARIABLES.str("GRPC_HOST"),
            port=VARIABLES.int(service.port_env),
            grace_seconds=VARIABLES.float("GRPC_GRACE_S"),
            auth=InternalAuth.from_env(),
            metrics_port=metrics_port(service),
            connection_options=tuple(connection_age_options(
                VARIABLES.float("GRPC_MAX_CONNECTION_AGE_S"),
                VARIABLES.float("GRPC_MAX_CONNECTION_AGE_GRACE_S"))),
        )


@dataclass
class RunningServer:
    """A started server: bound, answering health, not yet SERVING until mark_serving()."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    gate: ReadinessGate
    names: list[str]

    async def mark_serving(self) -> None:
        """Opens the service's RPCs and flips every health status to SERVING."""
        self.gate.ready = True
        for service_name in ("", *self.names):
            await self.health.set(service_name, health_pb2.HealthCheckResponse.SERVING)

    async def drain(self, grace: float) -> None:
        """Health NOT_SERVING, refuse new calls, give in-flight ones grace seconds; those still
        running just before it ends answer UNAVAILABLE "shutting down" (gRPC's own stop would
        cancel them with an internal message a caller cannot act on)."""
        await self.health.enter_graceful_shutdown()
        margin = min(1.0, grace * 0.4)
        timer = asyncio.get_running_loop().call_later(grace - margin, self.gate.shut_down,
                                                      margin / 2)
        try:
            await self.server.stop(grace)
        finally:
            timer.cancel()


async def open_server(service: GrpcService, host: str, port: int, *, auth: InternalAuth,
                      options: tuple[tuple[str, int], ...] = ()) -> RunningServer:
    """Registers the service with health, reflection, internal auth and the error interceptor;
    binds (TLS when auth has certificates); starts. ``options`` add to SERVER_OPTIONS."""
    names = service.service_names()
    gate = ReadinessGate(names[0].rpartition(".")[2] if names else "the service")
    server = grpc.aio.server(interceptors=[ErrorInterceptor(gate, auth)],
                             options=[*SERVER_OPTIONS, *options])
    service.register(server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME], server)
    for service_name in ("", *names):
        await health.set(service_name, health_pb2.HealthCheckResponse.NOT_SERVING)
    credentials = auth.server_credentials()
    if credentials is None:
        bound = server.add_insecure_port(f"{host}:{port}")
    else:
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    await server.start()
    return RunningServer(server=server, port=bound, health=health, gate=gate, names=names)


async def serve(service: GrpcService, settings: ServerSettings) -> None:
    """Runs the service until SIGTERM/SIGINT, then drains gracefully."""
    running = await open_server(service, settings.host, settings.port, auth=settings.auth,
                                options=settings.connection_options)
    serve_metrics(settings.host, settings.metrics_port)
    auth = settings.auth
    log.info("listening", extra={"fields": {
        "host": settings.host, "port": running.port, "tls": auth.tls is not None,
        "metrics_port": settings.metrics_port or None,
        "internal_auth": "on" if auth.enabled else "OFF",
        "admin_rpcs": "on" if auth.admin_token else "off"}})
    if not auth.enabled:
        log.warning("INTERNAL AUTH IS OFF (INTERNAL_AUTH=off): anyone who reaches this port "
                    "can call every RPC")

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)

    starting = asyncio.create_task(service.start())
    stopping = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is None:
        await running.mark_serving()
        log.info("serving", extra={"fields": {"port": running.port, "services": running.names}})
        await stopping
    elif starting.done():
        stopping.cancel()
        await running.server.stop(None)
        raise starting.exception()  # type: ignore[misc]
    else:
        starting.cancel()

    log.info("draining", extra={"fields": {"grace_seconds": settings.grace_seconds}})
    await running.drain(settings.grace_seconds)
    await service.stop()
    log.info("stopped")


def run(factory: Callable[[], GrpcService], process: Service,
        loop: Literal["asyncio", "uvloop"] = "asyncio") -> None:
    """Entry point of a service process: config, logging, serve; exits 2 on a config error.

    ``loop="uvloop"`` serves on uvloop instead of asyncio's own loop, for a process whose event
    loop is its hot path (the router relays every remote token through it: measured, about twice
    the unary chats per second at 32 concurrent callers)."""
    name = process.name
    try:
        configure_logging(name)
        tracing.setup(name)
        settings = ServerSettings.from_env(process)
        service = factory()
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        (uvloop.run if loop == "uvloop" else asyncio.run)(serve(service, settings))
    except ConfigError as exc:
        log.error("configuration error", extra={"fields": {"error": str(exc)}})
        sys.exit(2)
    except Exception:
        log.exception("start-up failed")
        sys.exit(1)
    finally:
        tracing.shutdown()
