"""OpenTelemetry tracing for every process: on when an OTLP endpoint is set, free when not.

    tracing.setup("router")        # once at start-up, before servers and channels are built
    if tracing.ENABLED:            # hot paths check the flag; nothing else runs when off
        tracing.set_attributes({GEN_AI_REQUEST_MODEL: model})
    tracing.shutdown()             # at exit: the batch of spans still queued is exported

``setup`` turns tracing on only when OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is not true). Off, the
OpenTelemetry packages are never imported, no middleware or interceptor is added, and the only
per-request work left is reading the ``ENABLED`` flag. On, the official SDK reads the standard
variables itself (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_EXPORTER_OTLP_HEADERS, ...): spans go in
batches (BatchSpanProcessor) over OTLP/HTTP protobuf; the spans are recorded by
upcoach_llm.common.span_recorder and encoded by upcoach_llm.common.otlp_encoding, both lean;
``service.name`` is OTEL_SERVICE_NAME, else the process name from upcoach_llm.api.topology.

Context crosses processes as W3C trace context (``traceparent``/``tracestate``, the global
propagator: OTEL_PROPAGATORS): in HTTP headers (the gateway honours an incoming one; remote engines
get one) and in gRPC metadata (``grpc_metadata`` on the client side, ``extract`` on the server
side). Span attributes follow the OpenTelemetry GenAI semantic conventions (the GEN_AI_* names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from upcoach_llm.api.names import FINISH_REASON_NAMES
from upcoach_llm.common import logging as service_logging
from upcoach_llm.common.errors import ConfigError
from upcoach_llm.common.variables import VARIABLES

ENABLED = False
"""Set once at start-up by ``setup`` (tests: ``use``): True while spans are recorded."""

# GenAI semantic conventions (Development status, names as of semconv 1.41 / semantic-conventions-
# genai). gen_ai.provider.name replaced gen_ai.system; time to first chunk is the client-side
# attribute, gen_ai.server.time_to_first_token the model server's.
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
FIRST_TOKEN_EVENT = "gen_ai.first_token"
CHAT = "chat"
EMBEDDINGS = "embeddings"

_provider: Any = None
_tracer: Any = None
_propagator: Any = None
_fields: frozenset[str | bytes] = frozenset()  # the propagator's header names, str and bytes
_context: Any = None  # opentelemetry.context
_trace: Any = None  # opentelemetry.trace


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for tracing: an OTLP endpoint, and the SDK not disabled."""
    endpoint = (VARIABLES.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", environ=environ)
                or VARIABLES.str("OTEL_EXPORTER_OTLP_ENDPOINT", environ=environ))
    return bool(endpoint) and not VARIABLES.bool("OTEL_SDK_DISABLED", environ=environ)


def _check() -> None:
    """Reads the variables the SDK will read, so a bad value fails at start-up naming its key."""
    VARIABLES.str("OTEL_TRACES_SAMPLER")
    VARIABLES.float("OTEL_TRACES_SAMPLER_ARG")
    VARIABLES.int("OTEL_BSP_SCHEDULE_DELAY")
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        url = VARIABLES.str(name)
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{name}: {service_logging.without_password(url)!r} is not an "
                              "http:// or https:// URL (OTLP over HTTP/protobuf)")


def setup(process: str) -> bool:
    """Turns tracing on when configured (see the module's doc); returns whether it is on.

    Call once per process, before servers, channels and apps are built: they decide at build
    time whether to add the tracing layer.
    """
    if not configured():
        return False
    _check()
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from upcoach_llm.common.otlp_encoding import LeanOTLPSpanExporter
    from upcoach_llm.common.span_recorder import LeanTracerProvider

    attributes = {}
    if not VARIABLES.str("OTEL_SERVICE_NAME") and "service.name=" not in \
            VARIABLES.str("OTEL_RESOURCE_ATTRIBUTES"):
        attributes["service.name"] = process
    provider = LeanTracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(LeanOTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    use(provider)
    service_logging.get_logger(__name__).info("tracing on", extra={"fields": {
        "service_name": provider.resource.attributes.get("service.name"),
        "endpoint": service_logging.without_password(
            VARIABLES.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or VARIABLES.str("OTEL_EXPORTER_OTLP_ENDPOINT")),
        "sampler": VARIABLES.str("OTEL_TRACES_SAMPLER") or "parentbased_always_on"}})
    return True


def use(provider: Any) -> None:
    """Records spans with ``provider`` from now on (setup's, or a test's in-memory one)."""
    global ENABLED, _provider, _tracer, _propagator, _fields, _context, _trace
    from opentelemetry import context, propagate, trace

    _provider = provider
    _tracer = provider.get_tracer("upcoach_llm")
    _propagator = propagate.get_global_textmap()
    _fields = frozenset(_propagator.fields) | frozenset(f.encode() for f in _propagator.fields)
    _context, _trace = context, trace
    service_logging.set_trace_ids(trace_ids)
    ENABLED = True


def shutdown() -> None:
    """Exports what is still queued and stops the exporter; a no-op when tracing is off."""
    global ENABLED, _provider
    if _provider is None:
        return
    ENABLED = False
    provider, _provider = _provider, None
    service_logging.set_trace_ids(None)
    provider.shutdown()


def tracer() -> Any:
    """The process's tracer (only when ENABLED)."""
    return _tracer


# -- the current span --------------------------------------------------------------------------

def current_span() -> Any:
    return _trace.get_current_span()


def set_attributes(attributes: Mapping[str, Any], span: Any = None) -> None:
    """Sets the attributes (None values left out) on the span, by default the current one."""
    (span or _trace.get_current_span()).set_attributes(
        {k: v for k, v in attributes.items() if v is not None})


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside a recorded one."""
    if _trace is None:
        return None
    context = _trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def failed(span: Any, exc: BaseException | None, description: str = "") -> None:
    """Marks the span as failed, with the exception as an event when there is one."""
    from opentelemetry.trace import Status, StatusCode

    if exc is not None:
        span.record_exception(exc)
        description = description or f"{type(exc).__name__}: {exc}"
    span.set_status(Status(StatusCode.ERROR, description[:300]))


# -- propagation -------------------------------------------------------------------------------

def attach(span: Any, parent: Any = None) -> object:
    """Makes the span current; returns the token ``detach`` takes."""
    return _context.attach(_trace.set_span_in_context(span, parent))


def detach(token: object) -> None:
    _context.detach(token)


def extract(pairs: Iterable[tuple[Any, Any]] | None) -> Any:
    """The parent context carried by request headers or gRPC metadata (pairs of str or bytes)."""
    carrier: dict[str, str] = {}
    for key, value in pairs or ():
        if key in _fields:
            name = key.decode("latin-1") if isinstance(key, bytes) else key
            carrier[name] = value.decode("latin-1") if isinstance(value, bytes) else value
    return _propagator.extract(carrier) if carrier else None


def headers() -> dict[str, str]:
    """The current context as HTTP headers (traceparent, tracestate); {} when tracing is off."""
    if not ENABLED:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def grpc_metadata(base: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    """``base`` plus the current context's traceparent (and tracestate) as gRPC metadata."""
    carrier = headers()
    return (*base, *carrier.items()) if carrier else base


def propagating(method: Callable[..., Any],
                base: tuple[tuple[str, str], ...]) -> Callable[..., Any]:
    """A stub method whose calls carry ``base`` plus the caller's trace context as metadata."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return method(*args, metadata=grpc_metadata(base), **kwargs)

    return call


def server_span(name: str, metadata: Iterable[tuple[Any, Any]] | None,
                attributes: Mapping[str, Any] | None = None) -> Any:
    """A SERVER span (not yet current) whose parent is the caller's context, when it sent one."""
    return _tracer.start_span(name, context=extract(metadata), kind=_trace.SpanKind.SERVER,
                              attributes=attributes)


def client_span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A CLIENT span (not yet current), child of the current one."""
    return _tracer.start_span(name, kind=_trace.SpanKind.CLIENT, attributes=attributes)


def internal_span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """``with internal_span(...)``: an INTERNAL span, current inside the block."""
    return _tracer.start_as_current_span(name, attributes=attributes)


def usage_attributes(usage: Any) -> dict[str, Any]:
    """GenAI token counts of a common_pb2.Usage."""
    return {GEN_AI_USAGE_INPUT_TOKENS: usage.prompt_tokens,
            GEN_AI_USAGE_OUTPUT_TOKENS: usage.completion_tokens}


def chat_request_attributes(model: str | None, max_tokens: int | None,
                            temperature: float | None) -> dict[str, Any]:
    """GenAI attributes of a chat request (unset values left out by ``set_attributes``)."""
    return {GEN_AI_OPERATION_NAME: CHAT, GEN_AI_REQUEST_MODEL: model or None,
            GEN_AI_REQUEST_MAX_TOKENS: max_tokens, GEN_AI_REQUEST_TEMPERATURE: temperature}


def chat_reply_attributes(model: str, finish_reason: int, usage: Any) -> dict[str, Any]:
    """GenAI attributes of a finished chat reply (finish_reason: the common_pb2 enum value)."""
    reason = FINISH_REASON_NAMES.get(finish_reason)
    return {GEN_AI_RESPONSE_MODEL: model or None,
            GEN_AI_RESPONSE_FINISH_REASONS: [reason] if reason else None,
            **(usage_attributes(usage) if usage is not None else {})}
