"""The OpenAPI document at /openapi.json, made to say what the gateway answers.

FastAPI documents a 422 for every operation that validates input and nothing of what the
middleware answers. ``install`` post-processes the document it builds:

- validation errors are documented as 400, the status errors.py gives them;
- an operation with a request body can also answer 413 (MAX_BODY_BYTES) and 415 (not JSON);
- an operation behind the gate (auth, rate limit) can answer 401, 429 and 503;
- an error response without content is given the one error shape, ErrorResponse (Ollama's
  OllamaErrorResponse on Ollama's paths, see ``error_schema``);
- the ``$defs`` of schemas written into routers' ``responses`` (see ``event_stream``) or
  request bodies become components, so that every ``$ref`` resolves inside the document.

Routers declare the errors their handlers can answer with ``errors(...)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from upcoach_llm.gateway.ollama import paths as ollama_paths
from upcoach_llm.gateway.ollama.paths import speaks_ollama

COMPONENTS = "#/components/schemas/{model}"
VALIDATION = {400: "the request is malformed or a value is out of range (error.param names it)"}
BODY = {413: "the body is larger than MAX_BODY_BYTES",
        415: "the body is not sent as Content-Type: application/json"}
GATE = {401: "no valid API key (Authorization: Bearer or X-API-Key) while LLM_API_KEY is set",
        429: "more than RATE_LIMIT_RPM requests in a minute, or a chat beyond the "
             "RATE_LIMIT_TPM token budget (Retry-After says when to retry)",
        503: "the rate limiter is down and RATE_LIMIT_FAIL_OPEN is false"}
UPSTREAM = {400: "a service refused a value (error.param names it)",
            404: "an unknown model (error.code model_not_found)",
            429: "every backend is busy (Retry-After says when to retry)",
            502: "the router ended the stream without a reply",
            503: "no service or backend can serve the request now",
            504: "no reply within UPSTREAM_TIMEOUT_S"}


class ErrorDetail(BaseModel):
    """What went wrong, and which field."""

    message: str
    type: str = Field(description="e.g. invalid_request_error, rate_limit_error")
    param: str | None = Field(description="the request field at fault, as the client wrote it")
    code: str | None = Field(description="e.g. invalid_value, model_not_found")


class ErrorResponse(BaseModel):
    """Every error the REST API answers has this shape."""

    error: ErrorDetail


class OllamaErrorResponse(BaseModel):
    """The error shape of Ollama's API (upcoach_llm/gateway/ollama/paths.py)."""

    error: str = Field(description="what went wrong, naming the request field at fault")


def error_schema(path: str) -> dict[str, Any]:
    """The error shape a path answers: the one shape, Ollama's on Ollama's paths, and either on
    /api/embeddings (OpenAI's body or Ollama's legacy one)."""
    one = {"$ref": COMPONENTS.format(model=ErrorResponse.__name__)}
    ollama = {"$ref": COMPONENTS.format(model=OllamaErrorResponse.__name__)}
    if speaks_ollama(path):
        return ollama
    if path == ollama_paths.EMBEDDINGS:
        return {"anyOf": [one, ollama]}
    return one


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for the errors its handler can answer from the services."""
    return {status: {"description": UPSTREAM[status]} for status in statuses}


def event_stream(*payloads: type[BaseModel]) -> dict[str, Any]:
    """The schema of one event of an SSE response (the way Open API 3.1 describes a stream):
    its data is one of payloads as JSON, or ``[DONE]`` at the end."""
    _, defs = models_json_schema([(model, "serialization") for model in payloads],
                                 ref_template=COMPONENTS)
    refs = [{"$ref": COMPONENTS.format(model=model.__name__)} for model in payloads]
    return {"type": "object", "required": ["data"], "$defs": defs["$defs"], "properties": {
        "data": {"type": "string", "description": "a JSON payload, or [DONE] at the end",
                 "if": {"const": "[DONE]"},
                 "else": {"contentMediaType": "application/json",
                          "contentSchema": {"anyOf": refs} if len(refs) > 1 else refs[0]}}}}


def install(app: FastAPI, gated: Callable[[str], bool]) -> None:
    """Makes ``app.openapi()`` return the post-processed document (a copy: FastAPI's document
    shares dicts with the routers' ``responses``)."""
    build = app.openapi
    last: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        built = build()
        if not last or last[0] is not built:
            last[:] = [built, describe(copy.deepcopy(built), gated)]
        return last[1]

    app.openapi = openapi


def describe(document: dict[str, Any], gated: Callable[[str], bool]) -> dict[str, Any]:
    """The document built by FastAPI, rewritten in place (see the module docstring)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    _, defs = models_json_schema([(ErrorResponse, "serialization"),
                                  (OllamaErrorResponse, "serialization")],
                                 ref_template=COMPONENTS)
    _merge(components, defs["$defs"])
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            validates = responses.pop("422", None) is not None
            if "requestBody" in operation:
                _add(responses, BODY)
            if validates or "requestBody" in operation:
                _add(responses, VALIDATION)
            if gated(path):
                _add(responses, GATE)
            for status, response in responses.items():
                if int(status) >= 400 and "content" not in response:
                    response["content"] = {"application/json": {"schema": error_schema(path)}}
                for media in response.get("content", {}).values():
                    _merge(components, media.get("schema", {}).pop("$defs", {}))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _merge(components, media.get("schema", {}).pop("$defs", {}))
    return document


def _add(responses: dict[str, Any], causes: dict[int, str]) -> None:
    for status, cause in causes.items():
        response = responses.setdefault(str(status), {"description": cause})
        if cause not in response["description"]:
            response["description"] += f"; or {cause}"


def _merge(components: dict[str, Any], defs: dict[str, Any]) -> None:
    for name, schema in defs.items():
        if components.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are both named {name} in the OpenAPI "
                             "document")
