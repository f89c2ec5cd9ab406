"""From the OpenAI chat request to the pipeline's ChatTurn: messages, sampling, cache form."""

from __future__ import annotations

from typing import Any

from upcoach_llm.api import common_pb2
from upcoach_llm.api.names import RESPONSE_FORMAT_TYPE_VALUES, ROLE_VALUES
from upcoach_llm.common.limits import MIN_TOP_P
from upcoach_llm.gateway.chat.pipeline import ChatTurn
from upcoach_llm.gateway.chat.protocol import ChatCompletionRequest, schema_text


def turn(request: ChatCompletionRequest, coaching_context: str = "") -> ChatTurn:
    """The request as the pipeline takes it."""
    return ChatTurn(model=request.model or "", feature=request.feature or "",
                    coaching_context=coaching_context, messages=messages(request),
                    sampling=sampling(request), canonical=canonical(request, coaching_context),
                    temperature=request.temperature, seed=request.seed,
                    max_tokens=request.token_limit())


def messages(request: ChatCompletionRequest) -> list[common_pb2.ChatMessage]:
    return [common_pb2.ChatMessage(role=ROLE_VALUES[m.role_name()], content=m.text())
            for m in request.messages]


def sampling(request: ChatCompletionRequest) -> common_pb2.SamplingParams:
    """Only the fields the caller set; the services fill in their defaults."""
    params = common_pb2.SamplingParams(stop=request.stops())
    if request.token_limit() is not None:
        params.max_tokens = request.token_limit()
    for name in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty",
                 "top_logprobs"):
        value = getattr(request, name)
        if value is not None:
            setattr(params, name, value)
    if request.top_p == 0:  # OpenAI allows 0: only the likeliest token; the services take (0, 1]
        params.top_p = MIN_TOP_P
    params.logprobs = bool(request.logprobs)
    if request.response_format is not None:
        params.response_format.CopyFrom(response_format(request))
    return params


def response_format(request: ChatCompletionRequest) -> common_pb2.ResponseFormat:
    """The request's response_format as the services take it (free text when unset)."""
    form = request.response_format
    if form is None:
        return common_pb2.ResponseFormat(type=RESPONSE_FORMAT_TYPE_VALUES["text"])
    if form.json_schema is None:
        return common_pb2.ResponseFormat(type=RESPONSE_FORMAT_TYPE_VALUES[form.type])
    return common_pb2.ResponseFormat(type=RESPONSE_FORMAT_TYPE_VALUES[form.type],
                                     schema_json=schema_text(form.json_schema.schema_),
                                     schema_name=form.json_schema.name)


def canonical(request: ChatCompletionRequest, coaching_context: str) -> dict[str, Any]:
    """Everything that decides the reply, and nothing else (not stream, not user).

    The reply's format (with its schema, as the engine gets it) and the logprobs asked for are
    part of it, so that a JSON reply or one with logprobs never answers a request for another.
    """
    values = {"max_tokens": request.token_limit(), "temperature": request.temperature,
              "top_p": request.top_p, "seed": request.seed, "stop": request.stops() or None,
              "frequency_penalty": request.frequency_penalty,
              "presence_penalty": request.presence_penalty,
              "logprobs": request.logprobs or None,
              "top_logprobs": request.top_logprobs if request.logprobs else None}
    form = request.response_format
    if form is not None and form.type != "text":
        fmt = response_format(request)
        values["response_format"] = [form.type, fmt.schema_json, fmt.schema_name]
    return {
        "model": request.model or "",
        "feature": request.feature or "",
        "coaching_context": coaching_context,
        "messages": [[m.role_name(), m.text()] for m in request.messages],
        "sampling": {k: float(v) if k in _FLOATS else v
                     for k, v in values.items() if v is not None},
    }


_FLOATS = frozenset({"temperature", "top_p", "frequency_penalty", "presence_penalty"})
