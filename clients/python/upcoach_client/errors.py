"""The one exception the client raises, with the gRPC status code it came from, the request
field that failed and the server's retry hint (both from the status details, when sent)."""

from __future__ import annotations

import grpc

from upcoach_client.api.status_details import field_of, retry_delay_of

# Codes that mean the server could not be reached or could not serve now: the hybrid client
# falls back on them (as the mode says) when they come before the first chunk.
UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class UpcoachError(Exception):
    """A failed call: ``code`` is the gRPC status, ``message`` the server's words, ``field`` the
    request field it names (``messages[0].content``) and ``retry_after_s`` how long the server
    asks the caller to wait before trying again (a busy or draining server)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, field: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s

    @property
    def unreachable(self) -> bool:
        """The server was unreachable or could not serve (UNAVAILABLE, DEADLINE_EXCEEDED)."""
        return self.code in UNREACHABLE


def from_rpc(exc: grpc.RpcError) -> UpcoachError:
    """The UpcoachError of a failed gRPC call (sync or asyncio)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    has_trailers = callable(getattr(exc, "trailing_metadata", None))
    return UpcoachError(code or grpc.StatusCode.UNKNOWN, details or "",
                        field=field_of(exc) if has_trailers else None,
                        retry_after_s=retry_delay_of(exc) if has_trailers else None)

