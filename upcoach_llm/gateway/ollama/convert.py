"""From Ollama's chat and generate requests to the pipeline's ChatTurn, and back to their names.

The turn is built like the OpenAI one (chat/convert.py): the same router messages, the same
sampling fields, and the same canonical form for the cache, so an Ollama request and an OpenAI
request that ask for the same reply share its cache entry. ``/api/generate`` is a chat of the
optional ``system`` message and the ``prompt``.

A service names a bad field as the OpenAI chat spells it (``max_tokens``, ``response_format``);
``ollama_error`` puts the Ollama name in its place (``options.num_predict``, ``format``).
"""

from __future__ import annotations

from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import RESPONSE_FORMAT_TYPE_VALUES, ROLE_VALUES
from upcoach_llm.gateway.chat.pipeline import ChatTurn
from upcoach_llm.gateway.chat.protocol import schema_text
from upcoach_llm.gateway.errors import APIError
from upcoach_llm.gateway.ollama.protocol import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaStreamed,
)

_FLOATS = frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty"})
_SAMPLING = ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty")
# The chat's REST names (after fields.py) -> Ollama's; generate's messages are its prompt.
_RENAMES = {"max_tokens": "options.num_predict", "stop": "options.stop",
            "response_format": "format",
            **{name: f"options.{name}" for name in _SAMPLING}}


def chat_messages(request: OllamaChatRequest) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in request.messages]


def generate_messages(request: OllamaGenerateRequest) -> list[tuple[str, str]]:
    pairs = [("system", request.system)] if request.system and request.system.strip() else []
    return [*pairs, ("user", request.prompt or "")]


def turn(request: OllamaStreamed, pairs: list[tuple[str, str]]) -> ChatTurn:
    """The request as the pipeline takes it."""
    options = request.sampling_options()
    return ChatTurn(model=request.model, feature="", coaching_context="",
                    messages=[common_pb2.ChatMessage(role=ROLE_VALUES[role], content=content)
                              for role, content in pairs],
                    sampling=sampling(request), canonical=canonical(request, pairs),
                    temperature=options.temperature, seed=options.seed,
                    max_tokens=options.max_tokens())


def sampling(request: OllamaStreamed) -> common_pb2.SamplingParams:
    """Only the fields the caller set; the services fill in their defaults."""
    options = request.sampling_options()
    params = common_pb2.SamplingParams(stop=options.stop or [])
    if options.max_tokens() is not None:
        params.max_tokens = options.max_tokens()
    for name in _SAMPLING:
        value = getattr(options, name)
        if value is not None:
            setattr(params, name, value)
    params.logprobs = bool(request.logprobs)
    if request.logprobs and request.top_logprobs is not None:
        params.top_logprobs = request.top_logprobs
    form = response_format(request)
    if form is not None:
        params.response_format.CopyFrom(form)
    return params


def response_format(request: OllamaStreamed) -> common_pb2.ResponseFormat | None:
    """``format`` as the services take it; None for free text."""
    if not request.format:
        return None
    if request.format == "json":
        return common_pb2.ResponseFormat(type=RESPONSE_FORMAT_TYPE_VALUES["json_object"])
    return common_pb2.ResponseFormat(type=RESPONSE_FORMAT_TYPE_VALUES["json_schema"],
                                     schema_json=schema_text(request.format))


def canonical(request: OllamaStreamed, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Everything that decides the reply, in the OpenAI chat's canonical form."""
    options = request.sampling_options()
    values: dict[str, Any] = {
        "max_tokens": options.max_tokens(), "stop": options.stop or None,
        **{name: getattr(options, name) for name in _SAMPLING},
        "logprobs": request.logprobs or None,
        "top_logprobs": request.top_logprobs if request.logprobs else None}
    form = response_format(request)
    if form is not None:
        kind = "json_object" if request.format == "json" else "json_schema"
        values["response_format"] = [kind, form.schema_json, form.schema_name]
    return {
        "model": request.model,
        "feature": "",
        "coaching_context": "",
        "messages": [list(pair) for pair in pairs],
        "sampling": {k: float(v) if k in _FLOATS else v
                     for k, v in values.items() if v is not None},
    }


def ollama_error(error: APIError, *, generate: bool = False) -> APIError:
    """The error with the field named as the Ollama request spells it."""
    param = error.param
    if not param:
        return error
    head, sep, tail = param.partition(".")
    bracket = head.find("[")
    root, rest = (head[:bracket], head[bracket:] + sep + tail) if bracket > 0 else (
        head, sep + tail)
    if root in _RENAMES:
        renamed = _RENAMES[root] + rest
    elif generate and root == "messages":
        renamed = "prompt"
    else:
        return error
    message = error.message
    if message.startswith(f"{param}: "):
        message = f"{renamed}: {message[len(param) + 2:]}"
    return APIError(error.status, message, param=renamed, code=error.code,
                    error_type=error.type, headers=error.headers)
