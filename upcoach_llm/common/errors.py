"""Service errors that carry their gRPC status code.

Handlers raise these; the error interceptor turns them into the matching status. Engines and
validators raise them too, so a failure keeps its meaning from the engine up to the gateway. What
a caller acts on travels as data in the status details (upcoach_llm.api.status_details), never
as text to parse: an error that says when to try again (a full queue, a draining server) carries
``retry_after_s``, sent as a ``google.rpc.RetryInfo``; an error about one request field carries
``field``, sent as a ``google.rpc.BadRequest`` with one field violation.
"""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    """An error with a gRPC status code and a message meant for the caller.

    With ``field`` (the request field's path, ``messages[1].content``), ``message`` describes
    what is wrong with it and the caller reads ``"messages[1].content: must not be empty"``.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None,
                 retry_after_s: float | None = None, field: str | None = None) -> None:
        self.description = message
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)
        self.retry_after_s = retry_after_s
        self.field = field or None
        if code is not None:
            self.code = code


class InvalidArgument(ServiceError):
    """The request is malformed; ``field`` names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    """A named thing (model, backend, item) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class OutOfRange(ServiceError):
    """A value is valid in type but past a limit (context window, prompt length)."""

    code = grpc.StatusCode.OUT_OF_RANGE


class FailedPrecondition(ServiceError):
    """The system is not in a state that allows the call (model not installed, pull unsupported)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(ServiceError):
    """A queue, quota or rate limit is full."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    """A backend or dependency cannot be reached; the call may succeed later or elsewhere."""

    code = grpc.StatusCode.UNAVAILABLE


class Unreachable(Unavailable):
    """Nothing reached the backend (connection refused, connect timeout): unlike an error it
    answered with, this says the backend itself is down."""


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UpstreamError(ServiceError):
    """A malformed or failed answer from a remote engine (bad NDJSON, truncated SSE, HTTP 5xx)."""

    code = grpc.StatusCode.UNAVAILABLE


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the file and the key."""
