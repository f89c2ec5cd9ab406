"""From the router's ChatRequest and ChatStreamRequest, as the app sends them, to the pipeline's
ChatTurn.

The messages and sampling go to the router as they came. The cache form is the OpenAI chat's
(chat/convert.py ``canonical``), so a grpc-web chat and the same chat over REST share cache
entries: a float is read from the proto's float32 rounded to the 7 digits float32 keeps (0.7,
not 0.699999988), as JSON spells it.
"""

from __future__ import annotations

from typing import Any

from upcoach_llm.api import common_pb2, router_pb2
from upcoach_llm.api.names import RESPONSE_FORMAT_TYPE_NAMES, ROLE_NAMES
from upcoach_llm.gateway.chat.pipeline import ChatTurn

_FLOATS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_INTS = ("max_tokens", "seed")
_TEXT_FORMATS = frozenset({common_pb2.RESPONSE_FORMAT_TYPE_UNSPECIFIED,
                           common_pb2.RESPONSE_FORMAT_TYPE_TEXT})


def turn(request: router_pb2.ChatRequest | router_pb2.ChatStreamRequest) -> ChatTurn:
    """The request as the pipeline takes it."""
    sampling = request.sampling
    return ChatTurn(model=request.model, feature=request.feature,
                    coaching_context=request.coaching_context, messages=list(request.messages),
                    sampling=sampling, canonical=canonical(request),
                    temperature=_float(sampling, "temperature"), seed=_set(sampling, "seed"),
                    max_tokens=_set(sampling, "max_tokens"),
                    locales=tuple(t for t in (request.locale, *request.more_locales) if t))


def canonical(request: router_pb2.ChatRequest | router_pb2.ChatStreamRequest) -> dict[str, Any]:
    """Everything that decides the reply, in the OpenAI chat's canonical form."""
    sampling = request.sampling
    values: dict[str, Any] = {name: _float(sampling, name) for name in _FLOATS}
    values.update({name: _set(sampling, name) for name in _INTS})
    values["stop"] = list(sampling.stop) or None
    values["logprobs"] = sampling.logprobs or None
    values["top_logprobs"] = _set(sampling, "top_logprobs") if sampling.logprobs else None
    form = sampling.response_format
    if form.type not in _TEXT_FORMATS:
        values["response_format"] = [RESPONSE_FORMAT_TYPE_NAMES.get(form.type, str(form.type)),
                                     form.schema_json, form.schema_name]
    return {
        "model": request.model,
        "feature": request.feature,
        "coaching_context": request.coaching_context,
        "messages": [[ROLE_NAMES.get(m.role, str(m.role)), m.content] for m in request.messages],
        "sampling": {k: v for k, v in values.items() if v is not None},
    }


def _set(sampling: common_pb2.SamplingParams, name: str) -> int | None:
    return getattr(sampling, name) if sampling.HasField(name) else None


def _float(sampling: common_pb2.SamplingParams, name: str) -> float | None:
    """An optional float32 field, rounded to the 7 significant digits float32 keeps."""
    if not sampling.HasField(name):
        return None
    return float(f"{getattr(sampling, name):.7g}")
