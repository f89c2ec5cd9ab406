"""The client's typed values: what the calls take and return, free of protobuf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from upcoach_client.api.names import InferenceTargetName


@dataclass(frozen=True)
class Message:
    """One conversation turn: role is system, user or assistant."""

    role: str
    content: str


Source = Literal["server", "on_device"]
MessageLike = Message | Mapping[str, str] | tuple[str, str]


@dataclass(frozen=True)
class Usage:
    """Token counts and timings of one generation."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    time_to_first_token_ms: float
    generation_ms: float


@dataclass(frozen=True)
class Route:
    """The model and backend the router chose, and why."""

    requested_model: str
    model: str
    backend: str
    reason: str
    fallbacks_skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatChunk:
    """One piece of a streamed reply; the first carries the route (server) or the decision,
    the last the finish reason and usage."""

    text: str
    source: Source = "server"
    route: Route | None = None
    decision: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    safety_category: str | None = None
    """Set when the server's crisis check answered (finish_reason "content_filter")."""


@dataclass(frozen=True)
class ChatReply:
    """A whole reply."""

    text: str
    finish_reason: str
    usage: Usage | None
    source: Source = "server"
    route: Route | None = None
    decision: str = ""
    safety_category: str | None = None
    """Set when the server's crisis check answered (finish_reason "content_filter")."""


@dataclass(frozen=True)
class Decision:
    """Where a prompt should run (the router's DecideInference)."""

    target: InferenceTargetName
    reason: str
    simple_query: bool
    safety_category: str | None = None
    """Set when the crisis check flagged the prompt; the target is then the server."""
    crisis_response: str | None = None
    """With safety_category: the crisis response, in the locale asked for."""
    edge_model: str | None = None
    """With a feature that can run on the device: its edge model (an id of the edge catalog)."""
    feature: str | None = None
    """The feature that decided: the one asked for, else the one the coaching context implies."""

    @property
    def on_device(self) -> bool:
        return self.target == "on_device"


@dataclass(frozen=True)
class Embeddings:
    """One L2-normalised vector per input text."""

    model: str
    vectors: list[list[float]]
    dimensions: int
    prompt_tokens: int


@dataclass(frozen=True)
class SearchHit:
    """One content search result."""

    id: str
    category: str
    title: str
    text: str
    tags: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class Availability:
    """Whether one backend can serve a model now."""

    backend: str
    type: str
    available: bool
    detail: str


@dataclass(frozen=True)
class ModelInfo:
    """A server model of the catalog."""

    name: str
    description: str
    kind: str
    required: bool
    size_bytes: int
    served: bool
    use_cases: tuple[str, ...] = ()
    availability: tuple[Availability, ...] = ()


@dataclass(frozen=True)
class EdgeFormat:
    """One downloadable file of an edge model."""

    format: str
    url: str
    size_mb: int
    quantization: str
    sha256: str


@dataclass(frozen=True)
class EdgeModelInfo:
    """An on-device model that fits the device."""

    id: str
    name: str
    platforms: tuple[str, ...]
    formats: tuple[EdgeFormat, ...]
    max_context: int
    min_device_ram_gb: float


@dataclass(frozen=True)
class EdgeModels:
    """The edge models that fit a device, and its default."""

    models: tuple[EdgeModelInfo, ...]
    default_model_id: str


@dataclass(frozen=True)
class PullStep:
    """One progress report of a model pull."""

    status: str
    digest: str = ""
    completed: int = 0
    total: int = 0
    done: bool = False


@dataclass(frozen=True)
class BackendInfo:
    """A configured engine instance as the router sees it."""

    name: str
    type: str
    url: str
    healthy: bool
    outstanding: int
    detail: str
    models: tuple[str, ...] = field(default=())
