"""The one REST error shape, ``{"error": {"message", "type", "param", "code"}}``, and its sources.

APIError is raised anywhere in the gateway; gRPC failures from the services become APIError with
the HTTP status of their code and, as ``param``, the REST name of the field their BadRequest
details name; FastAPI's validation errors become 400 naming the field. The
handlers installed by ``install_handlers`` render all of them the same way, except on the paths
of Ollama's API (upcoach_llm/gateway/ollama/paths.py), where the same error is Ollama's
``{"error": "<message>"}``: ``APIError.body(path)`` is the one place that chooses.
"""

from __future__ import annotations

import email.message
import math
import re
from collections.abc import Mapping
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from upcoach_llm.api.status_details import field_of, retry_delay_of
from upcoach_llm.common.limits import MAX_NAME_CHARS
from upcoach_llm.common.logging import get_logger
from upcoach_llm.gateway.fields import rest_param
from upcoach_llm.gateway.http.jsonbody import dumps
from upcoach_llm.gateway.ollama.paths import speaks_ollama

log = get_logger(__name__)
CLIENT_CLOSED = 499  # nginx's "client closed request": a cancelled call, a client that left

HTTP_OF_GRPC = {
    grpc.StatusCode.CANCELLED: CLIENT_CLOSED,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    CLIENT_CLOSED: "cancelled_error",
    501: "not_implemented_error",
    503: "service_unavailable_error",
    504: "timeout_error",
}

# Pydantic error locations: the request part, then field names and indexes.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "bytes", "list", "dict", "none"})


class APIError(Exception):
    """An error the client sees as ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, error_type: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = error_type or TYPE_OF_STATUS.get(status, "server_error")
        self.headers = dict(headers or {})

    def body(self, path: str = "") -> dict[str, Any]:
        """The one shape, or Ollama's ``{"error": message}`` on Ollama's paths."""
        if speaks_ollama(path):
            return {"error": self.message}
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def to_response(self, path: str = "") -> Response:
        """The response for a request to path (its shape is chosen by ``body``)."""
        return Response(dumps(self.body(path)), status_code=self.status,
                        media_type="application/json", headers=self.headers)


# Where a service's message names an internal address: a backend's "(openai at http://vllm:8000)"
# (engines/remote_http.py), and the socket address an OS error quotes ("('10.0.0.5', 11434)").
_BACKEND_ADDRESS = re.compile(r"\(([\w-]+) at [^()\s]+\)")
_SOCKET_ADDRESS = re.compile(r" ?\('[^']*'(?:, \d+)+\)")


def public_message(text: str) -> str:
    """A service's message as a caller outside the stack may read it: the backend named by its
    name and type, without the address it runs at (the logs and admins' /health keep that)."""
    return _SOCKET_ADDRESS.sub("", _BACKEND_ADDRESS.sub(r"(\1)", text))


def from_grpc(exc: grpc.aio.AioRpcError, family: str | None = None) -> APIError:
    """The APIError for a failed gRPC call: status from the code, param from the BadRequest.

    family (upcoach_llm.gateway.fields) names the REST operation the call served, so the service's
    field becomes the name the REST client sent; the message then names it that way too.
    """
    code = exc.code()
    message = public_message(exc.details() or code.name)
    status = HTTP_OF_GRPC.get(code, 500)
    field = field_of(exc)
    param = None
    if field is not None:
        param = rest_param(family, field)
        if param != field and message.startswith(f"{field}: "):
            message = f"{param}: {message[len(field) + 2:]}"
    error_code = code.name.lower()
    if code == grpc.StatusCode.NOT_FOUND and param == "model":
        error_code = "model_not_found"
    if status == 503:
        error_code = "upstream_unavailable"
    headers = {}
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        error_code = "server_busy"
        headers["Retry-After"] = str(max(1, math.ceil(retry_delay_of(exc) or 1)))
    return APIError(status, message, param=param, code=error_code, headers=headers)


def param_of(loc: tuple[Any, ...], *, key_last: bool = False) -> str | None:
    """A pydantic error location as the client wrote it: ("body", "messages", 0, "role") ->
    ``messages[0].role``. The request part ("body", "query", ...) and the union members pydantic
    names ("str", "list[TextPart]") are dropped; with key_last the last part is a key the client
    sent (an unknown field), kept as written."""
    parts = list(loc[1:] if loc and loc[0] in _LOCATIONS else loc)
    text = ""
    for index, part in enumerate(parts):
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = str(part)
        key = key_last and index == len(parts) - 1
        if not key and (not _FIELD.match(name) or name in _TYPE_NAMES):
            continue
        text += f".{name}" if text else name
    return _printable(text)[:MAX_NAME_CHARS] or None


def from_validation(exc: RequestValidationError) -> APIError:
    """400 for malformed JSON or a schema violation, naming the first bad field."""
    errors = exc.errors()
    first = errors[0] if errors else {"msg": "invalid request", "loc": (), "type": ""}
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return APIError(400, f"malformed JSON body: {detail}".rstrip(": "), code="invalid_json")
    if first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",):
        return APIError(400, "missing request body: send a JSON object", code="invalid_json")
    param = param_of(tuple(first.get("loc", ())), key_last=first.get("type") == "extra_forbidden")
    message = _printable(str(first.get("msg", "invalid value")))
    if first.get("type") == "missing":
        message = "field required"
    if first.get("type") == "extra_forbidden":
        message = "unsupported field: not a parameter this API accepts"
    if param:
        message = f"{param}: {message}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return APIError(400, message, param=param, code="invalid_value")


def _printable(text: str) -> str:
    """Text the JSON encoder accepts whatever the client sent (a lone surrogate is escaped)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def log_bug(path: str, exc: Exception) -> None:
    """An exception no handler expected, logged with its traceback."""
    log.error("unhandled error", exc_info=exc, extra={"fields": {"path": path}})


def bug_response(path: str, exc: Exception) -> Response:
    """The 500 for an exception no handler expected, logged with its traceback."""
    log_bug(path, exc)
    return APIError(500, f"internal error: {type(exc).__name__}",
                    code="internal").to_response(path)


_FASTAPI_PARSE_ERROR = "There was an error parsing the body"


def is_json_media_type(content_type: str) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON: application/json or
    application/*+json, parameters aside (``application/jsonx`` is not)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


def install_handlers(app: FastAPI) -> None:
    """Renders APIError, validation errors, HTTP errors and bugs in the one shape."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return exc.to_response(request.scope["path"])

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        path = request.scope["path"]
        content_type = request.headers.get("content-type", "application/json")
        if (not is_json_media_type(content_type) and not speaks_ollama(path)  # any type there
                and any(e.get("loc") == ("body",) for e in exc.errors())):
            return APIError(415, f"the body must be JSON, sent as Content-Type: application/json "
                                 f"(got {content_type})", code="unsupported_media_type",
                            ).to_response(path)
        return from_validation(exc).to_response(path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        if exc.status_code == 400 and exc.detail == _FASTAPI_PARSE_ERROR:
            # A body json.loads refused for a reason other than its syntax (nesting too deep):
            # the same answer as malformed JSON.
            return APIError(400, "malformed JSON body: it could not be parsed",
                            code="invalid_json").to_response(request.scope["path"])
        return APIError(exc.status_code, str(exc.detail), code=code,
                        headers=exc.headers).to_response(request.scope["path"])

    async def on_bug(request: Request, exc: Exception) -> Response:
        return bug_response(request.scope["path"], exc)

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)
