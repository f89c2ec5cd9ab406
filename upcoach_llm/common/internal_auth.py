"""Who may call the stack's gRPC services: a shared internal token, or mutual TLS.

    INTERNAL_TOKEN            the token every internal caller sends (``authorization: Bearer …``)
    INTERNAL_ADMIN_TOKEN      the token that administrative RPCs (IndexContent, PullModel) need;
                              unset: nobody may call them
    INTERNAL_TLS_CERT_FILE    this process's certificate (PEM), as server and as client
    INTERNAL_TLS_KEY_FILE     its private key
    INTERNAL_TLS_CA_FILE      the CA that signed every peer's certificate; with these three set,
                              servers require a client certificate and callers present theirs
    INTERNAL_TLS_SERVER_NAME  the name to expect in the servers' certificates (default: the
                              target's host)
    INTERNAL_AUTH             ``off`` opens every service to anyone (development only; logged)

A service refuses to start with neither a token nor mutual TLS unless INTERNAL_AUTH is off.
Health checks and reflection stay open so that probes and load balancers need no secret. The
server's interceptor (upcoach_llm.common.interceptor) applies ``refusal`` before any handler runs.
With mutual TLS the certificate authenticates the caller and the token is optional; administrative
RPCs always need the admin token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from upcoach_llm.api import embedding_pb2, model_registry_pb2
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.limits import MIN_SECRET_CHARS
from upcoach_llm.common.variables import VARIABLES

METADATA_KEY = "authorization"
# Probes and tools reach these without credentials, and the error interceptor leaves them alone.
ALWAYS_OPEN = ("/grpc.health.v1.", "/grpc.reflection.")


def _method_path(module: Any, service: str, method: str) -> str:
    full = module.DESCRIPTOR.services_by_name[service].methods_by_name[method].full_name
    service_name, _, method_name = full.rpartition(".")
    return f"/{service_name}/{method_name}"


ADMIN_METHODS = frozenset({
    _method_path(embedding_pb2, "EmbeddingService", "IndexContent"),
    _method_path(model_registry_pb2, "ModelRegistryService", "PullModel"),
})


@dataclass(frozen=True)
class TlsFiles:
    """PEM bytes of this process's certificate and key, and of the CA that signs every peer."""

    cert: bytes
    key: bytes
    ca: bytes
    server_name: str | None = None


@dataclass(frozen=True)
class InternalAuth:
    """The credentials this process accepts as a server and presents as a client."""

    token: str | None = None
    admin_token: str | None = None
    tls: TlsFiles | None = None
    enabled: bool = True

    @classmethod
    def disabled(cls) -> InternalAuth:
        """No checks at all: in-process tests and INTERNAL_AUTH=off."""
        return cls(enabled=False)

    @classmethod
    def from_env(cls) -> InternalAuth:
        """Reads the variables above; ConfigError when nothing protects the service."""
        enabled = VARIABLES.bool("INTERNAL_AUTH")
        token = VARIABLES.str("INTERNAL_TOKEN") or None
        admin = VARIABLES.str("INTERNAL_ADMIN_TOKEN") or None
        tls = tls_from_env()
        if not enabled:
            return cls(token=token, admin_token=admin, tls=tls, enabled=False)
        for name, value in (("INTERNAL_TOKEN", token), ("INTERNAL_ADMIN_TOKEN", admin)):
            if value is not None and len(value) < MIN_SECRET_CHARS:
                raise ConfigError(f"{name}: at least {MIN_SECRET_CHARS} characters are required")
        if token is None and tls is None:
            raise ConfigError(
                "INTERNAL_TOKEN: must be set (or mutual TLS through INTERNAL_TLS_CERT_FILE, "
                "INTERNAL_TLS_KEY_FILE and INTERNAL_TLS_CA_FILE); `make run` generates one. "
                "INTERNAL_AUTH=off opens the service to anyone")
        return cls(token=token, admin_token=admin, tls=tls)

    def refusal(self, method: str, metadata: Sequence[tuple[str, Any]] | None,
                ) -> tuple[grpc.StatusCode, str] | None:
        """Why a call to ``method`` with this metadata is refused; None when it may proceed."""
        if not self.enabled or method.startswith(ALWAYS_OPEN):
            return None
        presented = _bearer(metadata)
        if method in ADMIN_METHODS:
            if self.admin_token is None:
                return (grpc.StatusCode.PERMISSION_DENIED,
                        "administrative RPCs are disabled: INTERNAL_ADMIN_TOKEN is not set")
            if presented is None or not _same(presented, self.admin_token):
                return (grpc.StatusCode.UNAUTHENTICATED,
                        "this administrative RPC needs the internal admin token")
            return None
        if self.tls is not None and self.token is None:
            return None  # the client certificate was verified by the TLS handshake
        if presented is None:
            return (grpc.StatusCode.UNAUTHENTICATED,
                    "missing internal credentials: send authorization: Bearer <INTERNAL_TOKEN>")
        if _same(presented, self.token) or _same(presented, self.admin_token):
            return None
        return grpc.StatusCode.UNAUTHENTICATED, "invalid internal token"

    def metadata(self, *, admin: bool = False) -> tuple[tuple[str, str], ...]:
        """What this process sends on its calls to the other services."""
        token = self.admin_token if admin else self.token
        return ((METADATA_KEY, f"Bearer {token}"),) if token else ()

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS that requires a client certificate signed by the CA; None for plaintext."""
        if self.tls is None:
            return None
        return grpc.ssl_server_credentials([(self.tls.key, self.tls.cert)],
                                           root_certificates=self.tls.ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS presenting this process's certificate; None for plaintext."""
        if self.tls is None:
            return None
        return grpc.ssl_channel_credentials(root_certificates=self.tls.ca,
                                            private_key=self.tls.key,
                                            certificate_chain=self.tls.cert)

    def channel_options(self) -> list[tuple[str, str]]:
        if self.tls is not None and self.tls.server_name:
            return [("grpc.ssl_target_name_override", self.tls.server_name)]
        return []


def refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode,
              message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind that only aborts with code and message."""
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    async def stream(request: Any, context: grpc.aio.ServicerContext):
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    kinds: dict[str, Callable[..., Any]] = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    for kind, build in kinds.items():
        if getattr(handler, kind) is not None:
            behaviour = stream if kind.endswith("_stream") else unary
            return build(behaviour, request_deserializer=handler.request_deserializer,
                         response_serializer=handler.response_serializer)
    return handler


def _bearer(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key == METADATA_KEY:
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _same(presented: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(presented.encode(), expected.encode())


def tls_from_env(environ: Mapping[str, str] | None = None) -> TlsFiles | None:
    """The INTERNAL_TLS_* files, read; None when none is set."""
    names = ("INTERNAL_TLS_CERT_FILE", "INTERNAL_TLS_KEY_FILE", "INTERNAL_TLS_CA_FILE")
    values = {name: VARIABLES.str(name, environ=environ) for name in names}
    given = [name for name, value in values.items() if value]
    if not given:
        return None
    if len(given) != len(names):
        missing = ", ".join(n for n in names if n not in given)
        raise ConfigError(f"{missing}: mutual TLS needs all of {', '.join(names)}")
    contents = {}
    for name, value in values.items():
        try:
            contents[name] = Path(value).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{name}: {value} cannot be read ({exc.strerror})") from None
    return TlsFiles(cert=contents[names[0]], key=contents[names[1]], ca=contents[names[2]],
                    server_name=VARIABLES.str("INTERNAL_TLS_SERVER_NAME", environ=environ) or None)
