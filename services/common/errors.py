"""Service errors that carry their gRPC status code.

Handlers raise these; the error interceptor turns them into the matching status. Engines and
validators raise them too, so a failure keeps its meaning from the engine up to the gateway.
"""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    """An error with a gRPC status code and a message meant for the caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgument(ServiceError):
    """The request is malformed; the message names the field."""

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


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(ServiceError):
    """The caller went away."""

    code = grpc.StatusCode.CANCELLED


class UpstreamError(ServiceError):
    """A malformed or failed answer from a remote engine (bad NDJSON, truncated SSE, HTTP 5xx)."""

    code = grpc.StatusCode.UNAVAILABLE


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the file and the key."""
